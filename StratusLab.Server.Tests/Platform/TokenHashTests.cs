using StratusLab.Server.Platform.Security;

namespace StratusLab.Server.Tests.Platform;

public class TokenHashTests
{
    // Stores hold these hashes: the function must stay lower-case hex SHA-256 of the UTF-8 text.
    [TestCase("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")]
    [TestCase("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")]
    [TestCase("slt_é", "bc8334ed1623cec1d758362e47cb87e5436401a266df7f83f1d619f39d533a8e")]
    public void A_token_hashes_to_the_lower_case_hex_SHA256_of_its_UTF8_bytes(string token, string expected) =>
        Assert.That(TokenHash.Of(token), Is.EqualTo(expected));
}
