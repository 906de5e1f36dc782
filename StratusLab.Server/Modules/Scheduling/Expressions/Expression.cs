using System.Globalization;

namespace StratusLab.Server.Modules.Scheduling.Expressions;

/// <summary>A requirement or rank expression could not be parsed; <see cref="Position"/> is the 0-based column of the error.</summary>
internal sealed class ExpressionException(string message, int position) : Exception(message)
{
    public int Position { get; } = position;
}

/// <summary>A value during evaluation: a number or a string.</summary>
internal readonly record struct Value(double Number, string? Text)
{
    public static Value Of(double n) => new(n, null);
    public static Value Of(string s) => new(double.NaN, s);
    public bool IsText => Text is not null;
    public bool Truthy => IsText ? Text!.Length > 0 : Number != 0 && !double.IsNaN(Number);
    public override string ToString() => IsText ? $"\"{Text}\"" : Number.ToString(CultureInfo.InvariantCulture);
}

/// <summary>A parsed expression over host attributes (OpenNebula-style): parsed once, evaluated per host, no scripting engine.</summary>
internal abstract record Expr
{
    public abstract Value Evaluate(IReadOnlyDictionary<string, Value> attributes);

    /// <summary>Parses <paramref name="text"/>; throws <see cref="ExpressionException"/> pointing at the error.</summary>
    public static Expr Parse(string text, IReadOnlySet<string> knownAttributes) => new Parser(text, knownAttributes).ParseAll();
}

sealed record Number(double N) : Expr
{
    public override Value Evaluate(IReadOnlyDictionary<string, Value> a) => Value.Of(N);
}

sealed record Text(string S) : Expr
{
    public override Value Evaluate(IReadOnlyDictionary<string, Value> a) => Value.Of(S);
}

sealed record Attribute(string Name) : Expr
{
    public override Value Evaluate(IReadOnlyDictionary<string, Value> a) => a.TryGetValue(Name, out var v) ? v : Value.Of(0);
}

sealed record Unary(char Op, Expr Operand) : Expr
{
    public override Value Evaluate(IReadOnlyDictionary<string, Value> a)
    {
        var v = Operand.Evaluate(a);
        return Op == '!' ? Value.Of(v.Truthy ? 0 : 1) : Value.Of(-Num(v));
    }

    internal static double Num(Value v) => v.IsText ? double.NaN : v.Number;
}

sealed record Binary(string Op, Expr Left, Expr Right) : Expr
{
    public override Value Evaluate(IReadOnlyDictionary<string, Value> a)
    {
        if (Op == "&") return Value.Of(Left.Evaluate(a).Truthy && Right.Evaluate(a).Truthy ? 1 : 0);
        if (Op == "|") return Value.Of(Left.Evaluate(a).Truthy || Right.Evaluate(a).Truthy ? 1 : 0);
        var l = Left.Evaluate(a);
        var r = Right.Evaluate(a);
        if (Op is "=" or "!=")
        {
            var equal = l.IsText || r.IsText
                ? l.IsText && r.IsText && Matches(l.Text!, r.Text!)
                : l.Number.Equals(r.Number);
            return Value.Of(equal == (Op == "=") ? 1 : 0);
        }
        double x = Unary.Num(l), y = Unary.Num(r);
        return Op switch
        {
            "+" => Value.Of(x + y),
            "-" => Value.Of(x - y),
            "*" => Value.Of(x * y),
            "/" => Value.Of(y == 0 ? 0 : x / y),
            "<" => Value.Of(x < y ? 1 : 0),
            "<=" => Value.Of(x <= y ? 1 : 0),
            ">" => Value.Of(x > y ? 1 : 0),
            ">=" => Value.Of(x >= y ? 1 : 0),
            _ => throw new InvalidOperationException(Op),
        };
    }

    // OpenNebula allows '*' wildcards in string comparisons: HOSTNAME = "node*".
    static bool Matches(string value, string pattern)
    {
        if (!pattern.Contains('*')) return string.Equals(value, pattern, StringComparison.Ordinal);
        var regex = "^" + System.Text.RegularExpressions.Regex.Escape(pattern).Replace("\\*", ".*") + "$";
        return System.Text.RegularExpressions.Regex.IsMatch(value, regex);
    }
}

/// <summary>Recursive descent: or → and → comparison → additive → multiplicative → unary → primary.</summary>
sealed class Parser(string text, IReadOnlySet<string> known)
{
    int _pos;

    public Expr ParseAll()
    {
        if (string.IsNullOrWhiteSpace(text)) throw new ExpressionException("the expression is empty", 0);
        if (text.Length > 1000) throw new ExpressionException("the expression is longer than 1000 characters", 1000);
        var e = Or();
        Skip();
        if (_pos < text.Length) throw new ExpressionException($"unexpected '{text[_pos]}'", _pos);
        return e;
    }

    Expr Or()
    {
        var e = And();
        while (Accept("|")) e = new Binary("|", e, And());
        return e;
    }

    Expr And()
    {
        var e = Comparison();
        while (Accept("&")) e = new Binary("&", e, Comparison());
        return e;
    }

    Expr Comparison()
    {
        var e = Additive();
        foreach (var op in new[] { "!=", "<=", ">=", "=", "<", ">" })
            if (Accept(op)) return new Binary(op, e, Additive());
        return e;
    }

    Expr Additive()
    {
        var e = Multiplicative();
        while (true)
        {
            if (Accept("+")) e = new Binary("+", e, Multiplicative());
            else if (Accept("-")) e = new Binary("-", e, Multiplicative());
            else return e;
        }
    }

    Expr Multiplicative()
    {
        var e = UnaryExpr();
        while (true)
        {
            if (Accept("*")) e = new Binary("*", e, UnaryExpr());
            else if (Accept("/")) e = new Binary("/", e, UnaryExpr());
            else return e;
        }
    }

    Expr UnaryExpr()
    {
        if (Accept("-")) return new Unary('-', UnaryExpr());
        if (Accept("!")) return new Unary('!', UnaryExpr());
        return Primary();
    }

    Expr Primary()
    {
        Skip();
        if (_pos >= text.Length) throw new ExpressionException("the expression ends too early", _pos);
        var c = text[_pos];
        if (c == '(')
        {
            var open = _pos++;
            var e = Or();
            if (!Accept(")")) throw new ExpressionException($"the '(' at column {open + 1} is not closed", _pos);
            return e;
        }
        if (c == '"')
        {
            var start = _pos++;
            var end = text.IndexOf('"', _pos);
            if (end < 0) throw new ExpressionException("the string is not closed with '\"'", start);
            var s = text[_pos..end];
            _pos = end + 1;
            return new Text(s);
        }
        if (char.IsAsciiDigit(c) || c == '.')
        {
            var start = _pos;
            while (_pos < text.Length && (char.IsAsciiDigit(text[_pos]) || text[_pos] == '.')) _pos++;
            if (!double.TryParse(text[start.._pos], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var n))
                throw new ExpressionException($"'{text[start.._pos]}' is not a number", start);
            return new Number(n);
        }
        if (char.IsAsciiLetter(c) || c == '_')
        {
            var start = _pos;
            while (_pos < text.Length && (char.IsAsciiLetterOrDigit(text[_pos]) || text[_pos] == '_')) _pos++;
            var name = text[start.._pos].ToUpperInvariant();
            if (!known.Contains(name))
                throw new ExpressionException($"unknown attribute '{text[start.._pos]}'; known: {string.Join(", ", known.Order())}", start);
            return new Attribute(name);
        }
        throw new ExpressionException($"unexpected '{c}'", _pos);
    }

    bool Accept(string token)
    {
        Skip();
        if (string.CompareOrdinal(text, _pos, token, 0, token.Length) != 0) return false;
        // '=' must not swallow the first half of '==' typos silently; '&&' and '||' are accepted as '&' and '|'.
        _pos += token.Length;
        if ((token == "&" || token == "|") && _pos < text.Length && text[_pos] == token[0]) _pos++;
        return true;
    }

    void Skip()
    {
        while (_pos < text.Length && char.IsWhiteSpace(text[_pos])) _pos++;
    }
}
