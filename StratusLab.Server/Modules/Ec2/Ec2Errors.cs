namespace StratusLab.Server.Modules.Ec2;

/// <summary>An EC2 error: AWS's code (what clients switch on), a message for people, and the HTTP status.</summary>
internal sealed class Ec2Exception(string code, string message, int status = 400) : Exception(message)
{
    public string Code { get; } = code;
    public int Status { get; } = status;

    public static Ec2Exception MissingParameter(string name) =>
        new("MissingParameter", $"The request must contain the parameter {name}.");

    public static Ec2Exception InvalidParameterValue(string name, string value, string why) =>
        new("InvalidParameterValue", $"Value ({value}) for parameter {name} is invalid. {why}");
}
