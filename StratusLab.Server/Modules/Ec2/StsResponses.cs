using System.Xml.Linq;

namespace StratusLab.Server.Modules.Ec2;

/// <summary>
/// The one STS action clients need before they talk EC2: GetCallerIdentity (Terraform's AWS provider and `aws sts
/// get-caller-identity` ask it to learn the account). Answered on the same endpoint when the signature's credential
/// scope names the service 'sts'; any other STS action is UnsupportedOperation.
/// </summary>
internal static class StsResponses
{
    public const string Namespace = "https://sts.amazonaws.com/doc/2011-06-15/";
    static readonly XNamespace Ns = Namespace;

    public static XElement Run(Ec2Request request, string accessKeyId)
    {
        if (request.Action != "GetCallerIdentity")
            throw new Ec2Exception("UnsupportedOperation",
                $"The STS action '{request.Action}' is not supported by this server; only GetCallerIdentity is. Sign EC2 actions for the service 'ec2'.");
        var account = Ec2NetworkingShapes.AccountOf(request.Caller.UserId);
        var name = request.Principal.FindFirst(Identity.Contracts.IdentityClaims.Name)?.Value ?? "";
        return new XElement(Ns + "GetCallerIdentityResponse",
            new XElement(Ns + "GetCallerIdentityResult",
                new XElement(Ns + "Arn", $"arn:aws:iam::{account}:user/{name}"),
                new XElement(Ns + "UserId", accessKeyId),
                new XElement(Ns + "Account", account)),
            new XElement(Ns + "ResponseMetadata", new XElement(Ns + "RequestId", request.RequestId)));
    }
}
