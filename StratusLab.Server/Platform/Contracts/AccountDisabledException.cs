namespace StratusLab.Server.Platform.Contracts;

/// <summary>
/// The credentials are right but the account is disabled by an administrator (403): Identity's credential validation
/// throws it for passwords, tokens, access keys and sessions alike, so every door refuses the account with this message.
/// </summary>
public sealed class AccountDisabledException(string user, DateTimeOffset since)
    : DomainException(Rejection.Forbidden, $"The account '{user}' is disabled (since {since.UtcDateTime:yyyy-MM-dd HH:mm}Z); ask an administrator to enable it again.")
{
    public string User { get; } = user;
    public DateTimeOffset Since { get; } = since;
}
