using System.Net;
using System.Net.Mail;
using System.Net.Mime;
using System.Text;
using StratusLab.Server.Platform.Configuration;

namespace StratusLab.Server.Modules.Marketplace.Mail;

/// <summary>Sends the Marketplace's mails (endorser confirmations).</summary>
internal interface IMailSender
{
    Task SendAsync(string to, string subject, string body, CancellationToken ct = default);
}

/// <summary>
/// SMTP when Marketplace:Mail:SmtpHost is set, else RFC 5322 .eml files in the pickup folder (&lt;data-dir&gt;/mail-pickup
/// by default) that an administrator can read or hand to a mail transfer agent. The BCL client is enough for plain-text
/// notices with STARTTLS and login, and brings no extra dependency.
/// </summary>
internal sealed class SmtpMailSender(ServerOptions options, MarketplaceOptions marketplace, ILogger<SmtpMailSender> logger) : IMailSender
{
    public string PickupDir => marketplace.Mail.PickupDir is { Length: > 0 } dir ? dir : Path.Combine(options.DataDir, "mail-pickup");

    public async Task SendAsync(string to, string subject, string body, CancellationToken ct = default)
    {
        var mail = marketplace.Mail;
        using var message = new MailMessage(mail.From, to, subject, body)
        {
            BodyEncoding = Encoding.UTF8,
            SubjectEncoding = Encoding.UTF8,
            // 8bit keeps links intact in the .eml files (quoted-printable would break them across lines).
            BodyTransferEncoding = TransferEncoding.EightBit,
        };
        using var client = new SmtpClient();
        if (mail.SmtpHost.Length > 0)
        {
            client.Host = mail.SmtpHost;
            client.Port = mail.SmtpPort;
            client.EnableSsl = mail.StartTls;
            client.DeliveryMethod = SmtpDeliveryMethod.Network;
            if (mail.User.Length > 0) client.Credentials = new NetworkCredential(mail.User, mail.Password);
        }
        else
        {
            Directory.CreateDirectory(PickupDir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            client.DeliveryMethod = SmtpDeliveryMethod.SpecifiedPickupDirectory;
            client.PickupDirectoryLocation = PickupDir;
        }
        await client.SendMailAsync(message, ct);
        logger.LogInformation("Mail '{Subject}' to {To} {How}", subject, to, mail.SmtpHost.Length > 0 ? $"sent through {mail.SmtpHost}" : $"written to {PickupDir}");
    }
}
