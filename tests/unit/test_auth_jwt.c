/* JWT verification against tokens minted by npm's jsonwebtoken 9.0.3, every refusal with
 * jsonwebtoken's message, alg:none and algorithm confusion, exp/nbf/leeway boundaries at a fixed
 * `now`, signing byte for byte as jsonwebtoken signs, and the `sioc token` command.
 *
 * The fixtures were made in a scratch directory (npm install jsonwebtoken) with keys from
 *   openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048     (and 1024 for the short one)
 *   openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256  (and P-384)
 * and, with claims = {sub:'42', id:42, name:'Ada', iat:1700000000, exp:4102444800},
 *   jwt.sign(claims, 'sioc-test-secret', {algorithm})   HS256, HS384, HS512
 *   jwt.sign(claims, rsaPrivatePem, {algorithm:'RS256'}), likewise ES256 and ES384
 *   jwt.sign(claims, null, {algorithm:'none'})
 * Only the public keys are kept here. jwt.verify gave the messages asserted below. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "auth_jwt.h"
#include "token.h"

#define SECRET "sioc-test-secret"
#define NOW 1700000000 /* between the fixtures' iat and exp */

static const char rsa_public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAr10DdyUVKIK23Kd5K3st\n"
    "JVm6sNlQFsCqu6Eoi4LkLLZrICjSnE21Gzdv5EswtF/tKUMRDUVQNpSZ8VQZUDNM\n"
    "yEBuTm9vkSM29UXXetFe2BILgP58DnLoCuhD+453eGBlsWfhlSQpVSRB2H7DFwOg\n"
    "mmm2LGNFc+UOWIXuBpzZek6Klz/0O8X9giLnQi5zynISO5auedYiSqAEBWsHZiM2\n"
    "fcfumM6lkE1RM4OAjWogbMISSr937iuOkYvr7bifZp3sm6uvcLwZ08RBaq47umlG\n"
    "b3mkCAmXHBGbn+v4hkBS5Z4ffFjulth3fVH507P9+/O+AHlcRkuHtDB276sfs07w\n"
    "hQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char rsa_1024_public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDgTYkwatxf+5D8F1HVb8SCwMLH\n"
    "wEwK9n0ZQENnqDC3a2THZwmd8Hd6Fy/zK8NZFibG1ord1eFqK++y6yY5UT9+5xT6\n"
    "pXCeLnHFRDXEBTpytSwHtFb6q9KLymwRb+wHBWEYZ8XnEx0y0IQs9JwExQN6/MrP\n"
    "9AMOT2DhGO6b7BnF+QIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char ec_public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFhJ8ylR+XgSU6TPxPKsWZBbhzl7A\n"
    "o9frlVwN9hnJkt02aGpOSXup0ggx5UVcZURIsOxKOz77Wlh5Q69/TdVfag==\n"
    "-----END PUBLIC KEY-----\n";

/* The same P-256 key, in a self-signed certificate (openssl req -new -x509 -key ec.pem). */
static const char ec_certificate_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfzCCASWgAwIBAgIUA319Q0937T/bX63ZQSFajQOfWqEwCgYIKoZIzj0EAwIw\n"
    "FDESMBAGA1UEAwwJc2lvYy10ZXN0MCAXDTI2MTEyMTIxNTExMloYDzIxMjYxMDI4\n"
    "MjE1MTEyWjAUMRIwEAYDVQQDDAlzaW9jLXRlc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
    "PQMBBwNCAAQWEnzKVH5eBJTpM/E8qxZkFuHOXsCj1+uVXA32GcmS3TZoak5Je6nS\n"
    "CDHlRVxlREiw7Eo7PvtaWHlDr39N1V9qo1MwUTAdBgNVHQ4EFgQUBUQVPHUC826A\n"
    "IJMiAXBc0gV/jDcwHwYDVR0jBBgwFoAUBUQVPHUC826AIJMiAXBc0gV/jDcwDwYD\n"
    "VR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNIADBFAiEAhMnQQLw0Q+dKcI+BFBPh\n"
    "yge94n4QmB4rb00eXde5d1UCIBLX/zZTFdpnnlwi5tzJq+72OAzxPG3w+GlxMWxN\n"
    "aL32\n"
    "-----END CERTIFICATE-----\n";

static const char ec_p384_public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE/98J6JWw/uhGecDOYTsSEOyTIxkhX4pQ\n"
    "Mf2UwaxtG9tuDLfqvi3KO7smaoP2xv44r+DTzFeJDwuaNjJwLdaR4zYSirfRCB44\n"
    "75YCwo1Wa3cz2Gy6OhRoI68VvnsI9Pli\n"
    "-----END PUBLIC KEY-----\n";

#define HEADER_HS256 "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
#define HEADER_ES256 "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9"
#define HEADER_NONE "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"
/* {"sub":"42","id":42,"name":"Ada","iat":1700000000,"exp":4102444800} */
#define PAYLOAD_ADA                                                                                \
    "eyJzdWIiOiI0MiIsImlkIjo0MiwibmFtZSI6IkFkYSIsImlhdCI6MTcwMDAwMDAwMCwiZXhwIjo0MTAyNDQ0ODAwfQ"
#define SIGNATURE_HS256 "AJX7JtGTqUWUZA1cYi9mZUZsr1IRr-LfS1ZE9y8MEsQ"

static const char token_hs256[] = HEADER_HS256 "." PAYLOAD_ADA "." SIGNATURE_HS256;
static const char token_hs384[] =
    "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9." PAYLOAD_ADA
    ".buEyw56pHyU9mcJzjJXgJvPMF_7LsD5FpWhL-E9SQdhzwrDwb-GGNfUsYMz4bHef";
static const char token_hs512[] =
    "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9." PAYLOAD_ADA
    ".c5MSrobLvvAkQhlI9kNjruh5ni_fjwsrbZ1ms4c9AzeohgHBgo1kUsGfylVlzKXBf589BbJdD_d6-PXZJ-me2g";
static const char token_rs256[] =
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." PAYLOAD_ADA
    ".BibiVNozZzxajg7-iZcNckO3EOXZm1mmpiY8mIhpLfI5Hw-f7VsleTF1EnmbvUR4_LMDaoBEzSyADGEio4F6gV4o65pO"
    "bvg5G2rLQZTbDbkvAww4BGYrssvGan1PixouVh9IJDvyhFspAPsqeHWh4upe6mD47hMwE5n_NdgKC8zrgcb-31AH3m_n"
    "Nnhs4e1jt3bC8WwnhRNzv5DVXEWJgLg9kqxaIoZXG0ex-3tjz0famKJd-hXvrr6UNfuOf2XI_PMSOv0Qfv-9Uz8Ch_AA"
    "RPkUfvDcUduixtSqvzl_9AQDFwFrQjPPg1VJtFDzlEvvravGb_YFZKl7Dy5DbnqRpg";
/* Signed with another 2048-bit RSA key. */
static const char token_rs256_other_key[] =
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9." PAYLOAD_ADA
    ".ncc74wzwvGeR85Es4Hmnjq-y_g2ePNzbLG4XXq0vKOZ_qM64vTWpREFke6lsjmT5ngkvXTCORpCiek0pDsWp44Ztk0xW"
    "6PkuFdIj6Q1YuOTRahBLjpnB_66u1OkkwqMOvOtPW5i54ZH32VNzUaU_ILzTNOwXytaDJctVy-b1GHfFk-9IPCGT0mn4"
    "zwGwQEvhxKhhCBfmwhTcPFLkJQA0xd9n4QWH6ztRqFd7gGeOXVfLiwzm3n60aOY_Oeirrcxg62UKvUqtmdUg8Aoph-0Y"
    "RSQx4G4j89CIu9r-fbtNGpAK2ns3GrtsNmVsbzTuY42kZwvNBYOcXlp6d1oivedw5A";
#define SIGNATURE_ES256                                                                            \
    "Osku5VdMr6TTQDklBmej-TwWFZYUBcP94DHcsdznrhmbhEgpwkL07YW97k5G2Vk0RVHeeFC4flUO7Qn-aIXxLQ"
static const char token_es256[] = HEADER_ES256 "." PAYLOAD_ADA "." SIGNATURE_ES256;
static const char token_es384[] =
    "eyJhbGciOiJFUzM4NCIsInR5cCI6IkpXVCJ9." PAYLOAD_ADA
    ".MdtWBMdG2S2inm_y9vgUp9wzOwYMI3iKda62fD_5VD5BzWbW3yatu25Sb-vBTswmjPJvRm-Sbd0gsk5PGek9N8X7Y1w7"
    "G7AOzYH0jXqd5-JnGhVsLp02sEHnCrP8eAue";
/* The same ES256 input signed by crypto.sign, which gives DER, not JWS's r || s. */
static const char token_es256_der[] =
    HEADER_ES256 "." PAYLOAD_ADA ".MEUCIQC9D5fa0p-1exFLp_7BL_5Fu9JhEFY8Ta-tuNQ_Q-"
                 "IQFAIgT3CZwTkl8PnxkVC_rZ2XeRX8zlmmQLwFz2A9yOBUt4I";
static const char token_none[] = HEADER_NONE "." PAYLOAD_ADA ".";
static const char token_hs256_wrong_secret[] =
    HEADER_HS256 "." PAYLOAD_ADA ".Zdp82-t-O2WTGkPKcc-QOOBrDVuiE6mZUOWVsFGE4_4";
/* The classic confusion: HS256 with the RS256 public key PEM (rsa_public_pem) as HMAC secret,
 * made with crypto.createHmac('sha256', fs.readFileSync('rsa.pub')). */
static const char token_confusion[] =
    HEADER_HS256 "." PAYLOAD_ADA ".opj6Af-lzSpsR7PrKOOyKK8okSOigpZXhNc4KvtvUCo";
/* {sub:'42', iat:1600000000, nbf:1600000600, exp:1600003600} */
static const char token_window[] =
    HEADER_HS256 ".eyJzdWIiOiI0MiIsImlhdCI6MTYwMDAwMDAwMCwibmJmIjoxNjAwMDAwNjAwLCJleHAiOjE2MDAwMDM2"
                 "MDB9.GlmWErPrrQPDbumI8CKkI6bRdE-VeHZcgmaf80274Oc";
/* jwt.sign({sub:'alice', id:'alice', iat:1700000000, exp:1700003600, room:'a/b', n:1.5,
 *           ok:true, nested:{x:[1,'é']}}, SECRET) */
static const char token_round_trip[] =
    HEADER_HS256 ".eyJzdWIiOiJhbGljZSIsImlkIjoiYWxpY2UiLCJpYXQiOjE3MDAwMDAwMDAsImV4cCI6MTcwMDAwMzYw"
                 "MCwicm9vbSI6ImEvYiIsIm4iOjEuNSwib2siOnRydWUsIm5lc3RlZCI6eyJ4IjpbMSwiw6kiXX19."
                 "7l2JLE4Eyvk7_TgoJPS8o9h89T1sPjmiARFZKoP6dkI";

static auth_jwt_t *verifier_new(const char *algorithm, const char *secret, const char *pem,
                                uint32_t leeway)
{
    char error[256] = "";
    auth_jwt_options_t options = {algorithm, secret, pem, leeway};
    auth_jwt_t *jwt = auth_jwt_new(&options, error, sizeof(error));
    if (jwt == NULL)
        fail_msg("auth_jwt_new(%s): %s", algorithm, error);
    return jwt;
}

/* The refusal message for token, or NULL when it verifies. */
static const char *verify_message(const auth_jwt_t *jwt, const char *token, size_t length,
                                  int64_t now)
{
    const char *message = "not set";
    json_t *claims = auth_jwt_verify(jwt, token, length, now, &message);
    if (claims == NULL)
        return message;
    json_decref(claims);
    return NULL;
}

static void assert_refused(const auth_jwt_t *jwt, const char *token, int64_t now,
                           const char *expected)
{
    const char *message = verify_message(jwt, token, strlen(token), now);
    if (message == NULL)
        fail_msg("accepted, expected \"%s\": %s", expected, token);
    if (strcmp(message, expected) != 0)
        fail_msg("\"%s\", expected \"%s\": %s", message, expected, token);
}

/* The claims of Ada's fixtures, as jsonwebtoken signed them. */
static void assert_ada(json_t *claims)
{
    assert_non_null(claims);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "42");
    assert_int_equal(json_integer_value(json_object_get(claims, "id")), 42);
    assert_string_equal(json_string_value(json_object_get(claims, "name")), "Ada");
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), 4102444800LL);
    assert_int_equal(json_object_size(claims), 5);
}

static void assert_verifies_as_ada(const char *algorithm, const char *secret, const char *pem,
                                   const char *token)
{
    auth_jwt_t *jwt = verifier_new(algorithm, secret, pem, 0);
    const char *message = NULL;
    json_t *claims = auth_jwt_verify(jwt, token, strlen(token), NOW, &message);
    if (claims == NULL)
        fail_msg("%s refused: %s", algorithm, message);
    assert_ada(claims);
    json_decref(claims);
    auth_jwt_free(jwt);
}

/* Replaces segment `index` (0 header, 1 payload, 2 signature) of token. */
static void splice(const char *token, int index, const char *replacement, char *out, size_t size)
{
    const char *start = token;
    for (int i = 0; i < index; i++)
        start = strchr(start, '.') + 1;
    const char *end = strchr(start, '.');
    if (end == NULL)
        end = start + strlen(start);
    int written = snprintf(out, size, "%.*s%s%s", (int)(start - token), token, replacement, end);
    assert_true(written > 0 && (size_t)written < size);
}

static void test_jsonwebtoken_tokens_verify(void **state)
{
    (void)state;
    assert_verifies_as_ada("HS256", SECRET, NULL, token_hs256);
    assert_verifies_as_ada("HS384", SECRET, NULL, token_hs384);
    assert_verifies_as_ada("HS512", SECRET, NULL, token_hs512);
    assert_verifies_as_ada("RS256", NULL, rsa_public_pem, token_rs256);
    assert_verifies_as_ada("ES256", NULL, ec_public_pem, token_es256);
    assert_verifies_as_ada("ES256", NULL, ec_certificate_pem, token_es256);
    /* The option the algorithm does not use is ignored, not mistaken for the key. */
    assert_verifies_as_ada("RS256", "an unused secret", rsa_public_pem, token_rs256);
    assert_verifies_as_ada("HS256", SECRET, rsa_public_pem, token_hs256);
}

static void test_malformed_tokens_refused(void **state)
{
    (void)state;
    auth_jwt_t *jwt = verifier_new("HS256", SECRET, NULL, 0);
    char token[512];
    assert_string_equal(verify_message(jwt, "", 0, NOW), "jwt must be provided");
    assert_refused(jwt, HEADER_HS256 "." PAYLOAD_ADA, NOW, "jwt malformed");
    assert_refused(jwt, "abc", NOW, "jwt malformed");
    snprintf(token, sizeof(token), "%s.x", token_hs256);
    assert_refused(jwt, token, NOW, "jwt malformed");
    assert_refused(jwt, "..", NOW, "invalid token");
    assert_refused(jwt, "." PAYLOAD_ADA "." SIGNATURE_HS256, NOW, "invalid token");
    assert_refused(jwt, HEADER_HS256 ".." SIGNATURE_HS256, NOW, "invalid token");
    /* Outside the alphabet, in each segment: '*', standard base64's '+' and '/', padding. */
    assert_refused(jwt, "*" HEADER_HS256 "." PAYLOAD_ADA "." SIGNATURE_HS256, NOW, "invalid token");
    assert_refused(jwt, HEADER_HS256 "." PAYLOAD_ADA "+." SIGNATURE_HS256, NOW, "invalid token");
    assert_refused(jwt, HEADER_HS256 "." PAYLOAD_ADA "." SIGNATURE_HS256 "/", NOW, "invalid token");
    assert_refused(jwt, HEADER_HS256 "=." PAYLOAD_ADA "." SIGNATURE_HS256, NOW, "invalid token");
    assert_refused(jwt, HEADER_HS256 "." PAYLOAD_ADA "." SIGNATURE_HS256 "=", NOW, "invalid token");
    assert_refused(jwt, " " HEADER_HS256 "." PAYLOAD_ADA "." SIGNATURE_HS256, NOW, "invalid token");
    /* Base64url of: nope, [1], 123, "x" (valid JSON but not objects, or not JSON). */
    splice(token_hs256, 0, "bm9wZQ", token, sizeof(token));
    assert_refused(jwt, token, NOW, "invalid token");
    splice(token_hs256, 0, "WzFd", token, sizeof(token));
    assert_refused(jwt, token, NOW, "invalid token");
    splice(token_hs256, 1, "MTIz", token, sizeof(token));
    assert_refused(jwt, token, NOW, "invalid token");
    splice(token_hs256, 1, "Ingi", token, sizeof(token));
    assert_refused(jwt, token, NOW, "invalid token");
    /* A 4n+1 length (its last 6 bits would make no byte); non-canonical: the last character's
     * unused bits set ("fQ" -> "fR"). */
    assert_refused(jwt, HEADER_HS256 "A." PAYLOAD_ADA "." SIGNATURE_HS256, NOW, "invalid token");
    snprintf(token, sizeof(token), "%s", token_hs256);
    strstr(token, "fQ.")[1] = 'R';
    assert_refused(jwt, token, NOW, "invalid token");
    auth_jwt_free(jwt);
}

static void test_embedded_nul_and_length_limit(void **state)
{
    (void)state;
    auth_jwt_t *jwt = verifier_new("HS256", SECRET, NULL, 0);
    char token[sizeof(token_hs256)];
    memcpy(token, token_hs256, sizeof(token));
    token[10] = '\0';
    assert_string_equal(verify_message(jwt, token, sizeof(token) - 1, NOW), "invalid token");
    /* The length is the caller's: the NUL terminator is not part of the token. */
    assert_string_equal(verify_message(jwt, token_hs256, sizeof(token_hs256), NOW),
                        "invalid token");
    assert_null(verify_message(jwt, token_hs256, sizeof(token_hs256) - 1, NOW));

    size_t long_length = AUTH_JWT_MAX_TOKEN_LENGTH + 1;
    char *long_token = malloc(long_length);
    assert_non_null(long_token);
    memset(long_token, 'A', long_length);
    long_token[10] = long_token[20] = '.';
    assert_string_equal(verify_message(jwt, long_token, long_length, NOW), "jwt malformed");
    free(long_token);
    auth_jwt_free(jwt);
}

static void test_alg_none_refused(void **state)
{
    (void)state;
    auth_jwt_t *hs256 = verifier_new("HS256", SECRET, NULL, 0);
    auth_jwt_t *rs256 = verifier_new("RS256", NULL, rsa_public_pem, 0);
    auth_jwt_t *es256 = verifier_new("ES256", NULL, ec_public_pem, 0);
    char token[512];
    /* Unsigned: jsonwebtoken refuses before looking at the algorithm. */
    assert_refused(hs256, token_none, NOW, "jwt signature is required");
    assert_refused(rs256, token_none, NOW, "jwt signature is required");
    assert_refused(es256, token_none, NOW, "jwt signature is required");
    assert_refused(hs256, HEADER_HS256 "." PAYLOAD_ADA ".", NOW, "jwt signature is required");
    /* "none" (in any case) with a signature attached, or no "alg" at all. */
    assert_refused(hs256, HEADER_NONE "." PAYLOAD_ADA "." SIGNATURE_HS256, NOW,
                   "invalid algorithm");
    splice(token_hs256, 0, "eyJhbGciOiJOb25lIn0", token, sizeof(token)); /* {"alg":"None"} */
    assert_refused(hs256, token, NOW, "invalid algorithm");
    splice(token_hs256, 0, "eyJ0eXAiOiJKV1QifQ", token, sizeof(token)); /* {"typ":"JWT"} */
    assert_refused(hs256, token, NOW, "invalid algorithm");
    splice(token_hs256, 0, "eyJhbGciOjI1Nn0", token, sizeof(token)); /* {"alg":256} */
    assert_refused(hs256, token, NOW, "invalid algorithm");
    splice(token_hs256, 0, "eyJhbGciOiJoczI1NiJ9", token, sizeof(token)); /* {"alg":"hs256"} */
    assert_refused(hs256, token, NOW, "invalid algorithm");
    auth_jwt_free(hs256);
    auth_jwt_free(rs256);
    auth_jwt_free(es256);
}

static void test_algorithm_confusion_refused(void **state)
{
    (void)state;
    auth_jwt_t *rs256 = verifier_new("RS256", NULL, rsa_public_pem, 0);
    auth_jwt_t *es256 = verifier_new("ES256", NULL, ec_public_pem, 0);
    auth_jwt_t *hs256 = verifier_new("HS256", SECRET, NULL, 0);
    /* An HS256 token whose HMAC key is the RS256 verifier's public key. */
    assert_refused(rs256, token_confusion, NOW, "invalid algorithm");
    assert_refused(rs256, token_hs256, NOW, "invalid algorithm");
    assert_refused(es256, token_hs256, NOW, "invalid algorithm");
    assert_refused(es256, token_rs256, NOW, "invalid algorithm");
    assert_refused(rs256, token_es256, NOW, "invalid algorithm");
    assert_refused(hs256, token_rs256, NOW, "invalid algorithm");
    assert_refused(hs256, token_hs384, NOW, "invalid algorithm");
    assert_refused(es256, token_es384, NOW, "invalid algorithm");

    /* Nor can the public key be configured as an HMAC secret. */
    char error[256] = "";
    auth_jwt_options_t options = {"HS256", rsa_public_pem, NULL, 0};
    assert_null(auth_jwt_new(&options, error, sizeof(error)));
    assert_non_null(strstr(error, "PEM key"));
    auth_jwt_free(hs256);
    auth_jwt_free(rs256);
    auth_jwt_free(es256);
}

static void test_bad_signatures_refused(void **state)
{
    (void)state;
    auth_jwt_t *hs256 = verifier_new("HS256", SECRET, NULL, 0);
    auth_jwt_t *rs256 = verifier_new("RS256", NULL, rsa_public_pem, 0);
    auth_jwt_t *es256 = verifier_new("ES256", NULL, ec_public_pem, 0);
    char token[1024];
    assert_refused(hs256, token_hs256_wrong_secret, NOW, "invalid signature");
    assert_refused(rs256, token_rs256_other_key, NOW, "invalid signature");
    assert_refused(es256, token_es256_der, NOW, "invalid signature");
    /* The payload of another token under HS256's signature: {"sub":"1"}. */
    splice(token_hs256, 1, "eyJzdWIiOiIxIn0", token, sizeof(token));
    assert_refused(hs256, token, NOW, "invalid signature");
    splice(token_rs256, 1, "eyJzdWIiOiIxIn0", token, sizeof(token));
    assert_refused(rs256, token, NOW, "invalid signature");
    splice(token_es256, 1, "eyJzdWIiOiIxIn0", token, sizeof(token));
    assert_refused(es256, token, NOW, "invalid signature");
    /* Truncated signatures, and HS256's with its unused low bits set ('Q' -> 'R'). */
    splice(token_hs256, 2, "AJX7JtGTqUWUZA1cYi9mZUZsr1IRr-LfS1ZE9y8MEs", token, sizeof(token));
    assert_refused(hs256, token, NOW, "invalid signature");
    splice(token_hs256, 2, "AJX7JtGTqUWUZA1cYi9mZUZsr1IRr-LfS1ZE9y8MEsR", token, sizeof(token));
    assert_refused(hs256, token, NOW, "invalid signature");
    splice(token_es256, 2, "Osku5VdMr6TTQDklBmej-TwWFZYUBcP94DHcsdznrhk", token, sizeof(token));
    assert_refused(es256, token, NOW, "invalid signature");
    splice(token_rs256, 2, "AAAA", token, sizeof(token));
    assert_refused(rs256, token, NOW, "invalid signature");
    /* r and s swapped; r = s = 0; a signature far too long. */
    splice(token_es256, 2,
           "m4RIKcJC9O2Fve5ORtlZNEVR3nhQuH5VDu0J_miF8S06yS7lV0yvpNNAOSUGZ6P5PBYVlhQFw_3gMdyx3OeuGQ",
           token, sizeof(token));
    assert_refused(es256, token, NOW, "invalid signature");
    splice(token_es256, 2,
           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
           token, sizeof(token));
    assert_refused(es256, token, NOW, "invalid signature");
    char long_signature[1500];
    memset(long_signature, 'A', sizeof(long_signature) - 1);
    long_signature[sizeof(long_signature) - 1] = '\0';
    char *long_token = malloc(4096);
    assert_non_null(long_token);
    splice(token_rs256, 2, long_signature, long_token, 4096);
    assert_refused(rs256, long_token, NOW, "invalid signature");
    free(long_token);
    auth_jwt_free(hs256);
    auth_jwt_free(rs256);
    auth_jwt_free(es256);
}

typedef struct time_case_s {
    int64_t now;
    uint32_t leeway;
    const char *message; /* NULL: accepted */
} time_case_t;

/* nbf 1600000600, exp 1600003600: jwt.verify(token, SECRET, {clockTimestamp, clockTolerance})
 * gave exactly these answers. */
static void test_time_boundaries(void **state)
{
    (void)state;
    static const time_case_t cases[] = {
        {1600003599, 0, NULL},
        {1600003600, 0, "jwt expired"},
        {1600003609, 10, NULL},
        {1600003610, 10, "jwt expired"},
        {1600000600, 0, NULL},
        {1600000599, 0, "jwt not active"},
        {1600000590, 10, NULL},
        {1600000589, 10, "jwt not active"},
        {NOW, 0, "jwt expired"},
        {0, 0, "jwt not active"},
        {1600000000, 3600, NULL},
        {1600007199, 3600, NULL},
        {1600007200, 3600, "jwt expired"},
        {-1, 0, "jwt not active"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        auth_jwt_t *jwt = verifier_new("HS256", SECRET, NULL, cases[i].leeway);
        const char *message = verify_message(jwt, token_window, strlen(token_window), cases[i].now);
        if (cases[i].message == NULL ? message != NULL
                                     : message == NULL || strcmp(message, cases[i].message) != 0)
            fail_msg("now %lld leeway %u: \"%s\", expected \"%s\"", (long long)cases[i].now,
                     cases[i].leeway, message ? message : "accepted",
                     cases[i].message ? cases[i].message : "accepted");
        auth_jwt_free(jwt);
    }
}

/* Signs claims (JSON text) with SECRET and returns the verifier's answer at now. */
static const char *sign_and_verify(const char *claims_text, int64_t now)
{
    json_t *claims = json_loads(claims_text, 0, NULL);
    assert_non_null(claims);
    char *token = auth_jwt_sign_hmac("HS256", SECRET, claims);
    assert_non_null(token);
    auth_jwt_t *jwt = verifier_new("HS256", SECRET, NULL, 0);
    const char *message = verify_message(jwt, token, strlen(token), now);
    auth_jwt_free(jwt);
    free(token);
    json_decref(claims);
    return message;
}

static void test_time_claim_types(void **state)
{
    (void)state;
    assert_string_equal(sign_and_verify("{\"exp\":\"4102444800\"}", NOW), "invalid exp value");
    assert_string_equal(sign_and_verify("{\"exp\":null}", NOW), "invalid exp value");
    assert_string_equal(sign_and_verify("{\"nbf\":\"0\"}", NOW), "invalid nbf value");
    assert_string_equal(sign_and_verify("{\"nbf\":true}", NOW), "invalid nbf value");
    /* nbf is checked before exp, as jsonwebtoken does. */
    assert_string_equal(sign_and_verify("{\"nbf\":[],\"exp\":\"x\"}", NOW), "invalid nbf value");
    assert_string_equal(sign_and_verify("{\"nbf\":1700000001,\"exp\":1}", NOW), "jwt not active");
    /* Fractional times compare as JavaScript's doubles do. */
    assert_null(sign_and_verify("{\"exp\":1700000000.5}", NOW));
    assert_string_equal(sign_and_verify("{\"exp\":1700000000.5}", NOW + 1), "jwt expired");
    assert_string_equal(sign_and_verify("{\"nbf\":1700000000.5}", NOW), "jwt not active");
    assert_null(sign_and_verify("{\"nbf\":1700000000.5}", NOW + 1));
    /* Neither claim: no time limit, as in jsonwebtoken. */
    assert_null(sign_and_verify("{\"sub\":\"x\"}", NOW));
    assert_null(sign_and_verify("{}", INT64_MAX));
}

typedef struct options_case_s {
    const char *algorithm, *secret, *pem;
    const char *error_part;
} options_case_t;

static void test_bad_options_refused(void **state)
{
    (void)state;
    static const options_case_t cases[] = {
        {"HS257", SECRET, NULL, "unknown JWT algorithm \"HS257\""},
        {NULL, SECRET, NULL, "unknown JWT algorithm"},
        {"none", SECRET, NULL, "unknown JWT algorithm"},
        {"ES384", NULL, ec_p384_public_pem, "unknown JWT algorithm"},
        {"HS256", NULL, NULL, "needs a secret"},
        {"HS256", "", NULL, "needs a secret"},
        {"HS512", ec_public_pem, NULL, "PEM key"},
        {"RS256", NULL, NULL, "needs a public key"},
        {"RS256", NULL, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
         "not a PEM public key"},
        {"RS256", NULL, SECRET, "not a PEM public key"},
        {"RS256", NULL, ec_public_pem, "needs an RSA public key"},
        {"RS256", NULL, rsa_1024_public_pem, "2048 bits or more (this one has 1024)"},
        {"ES256", NULL, rsa_public_pem, "needs an EC public key on curve P-256"},
        {"ES256", NULL, ec_p384_public_pem, "needs an EC public key on curve P-256"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char error[256] = "";
        auth_jwt_options_t options = {cases[i].algorithm, cases[i].secret, cases[i].pem, 0};
        auth_jwt_t *jwt = auth_jwt_new(&options, error, sizeof(error));
        if (jwt != NULL || strstr(error, cases[i].error_part) == NULL)
            fail_msg("case %zu: %s, error \"%s\", expected \"%s\"", i, jwt ? "accepted" : "refused",
                     error, cases[i].error_part);
    }
    auth_jwt_free(NULL);
}

static void test_sign_matches_jsonwebtoken(void **state)
{
    (void)state;
    json_t *claims = json_loads("{\"sub\":\"alice\",\"id\":\"alice\",\"iat\":1700000000,"
                                "\"exp\":1700003600,\"room\":\"a/b\",\"n\":1.5,\"ok\":true,"
                                "\"nested\":{\"x\":[1,\"\xc3\xa9\"]}}",
                                0, NULL);
    assert_non_null(claims);
    char *token = auth_jwt_sign_hmac("HS256", SECRET, claims);
    assert_non_null(token);
    assert_string_equal(token, token_round_trip);

    auth_jwt_t *jwt = verifier_new("HS256", SECRET, NULL, 0);
    const char *message = NULL;
    json_t *verified = auth_jwt_verify(jwt, token, strlen(token), NOW, &message);
    assert_non_null(verified);
    assert_true(json_equal(verified, claims));
    json_decref(verified);
    auth_jwt_free(jwt);
    free(token);

    static const char *const algorithms[] = {"HS384", "HS512"};
    for (size_t i = 0; i < 2; i++) {
        token = auth_jwt_sign_hmac(algorithms[i], SECRET, claims);
        assert_non_null(token);
        jwt = verifier_new(algorithms[i], SECRET, NULL, 0);
        assert_null(verify_message(jwt, token, strlen(token), NOW));
        auth_jwt_free(jwt);
        jwt = verifier_new(algorithms[i], "another secret", NULL, 0);
        assert_string_equal(verify_message(jwt, token, strlen(token), NOW), "invalid signature");
        auth_jwt_free(jwt);
        free(token);
    }
    json_decref(claims);
}

static void test_sign_refuses_bad_input(void **state)
{
    (void)state;
    json_t *claims = json_object();
    json_t *array = json_array();
    assert_null(auth_jwt_sign_hmac("RS256", SECRET, claims));
    assert_null(auth_jwt_sign_hmac("none", SECRET, claims));
    assert_null(auth_jwt_sign_hmac(NULL, SECRET, claims));
    assert_null(auth_jwt_sign_hmac("HS256", "", claims));
    assert_null(auth_jwt_sign_hmac("HS256", NULL, claims));
    assert_null(auth_jwt_sign_hmac("HS256", SECRET, array));
    assert_null(auth_jwt_sign_hmac("HS256", SECRET, NULL));
    char *token = auth_jwt_sign_hmac("HS256", SECRET, claims);
    assert_non_null(token);
    assert_string_equal(token, HEADER_HS256 ".e30.NVs1sGWnwL_5qF3OXYuRkd2jvIbaEyugaTHOfcWiokk");
    free(token);
    json_decref(array);
    json_decref(claims);
}

/* ---- sioc token ---------------------------------------------------------------------------- */

/* Runs token_main with stdout (and stderr) captured; returns what it printed (malloc'd). */
static char *run_token_command(int argc, const char **argv, int *status)
{
    fflush(stdout);
    fflush(stderr);
    FILE *captured = tmpfile(), *discarded = fopen("/dev/null", "w");
    assert_non_null(captured);
    assert_non_null(discarded);
    int saved_stdout = dup(STDOUT_FILENO), saved_stderr = dup(STDERR_FILENO);
    dup2(fileno(captured), STDOUT_FILENO);
    dup2(fileno(discarded), STDERR_FILENO);
    *status = token_main(argc, (char **)argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_stdout, STDOUT_FILENO);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stdout);
    close(saved_stderr);
    fclose(discarded);
    char *output = calloc(1, 4096);
    assert_non_null(output);
    rewind(captured);
    size_t length = fread(output, 1, 4095, captured);
    output[length] = '\0';
    fclose(captured);
    return output;
}

static void test_token_command(void **state)
{
    (void)state;
    const char *argv[] = {"token",
                          "--secret",
                          SECRET,
                          "--subject",
                          "42",
                          "--claim",
                          "role=admin",
                          "--claim",
                          "level=3",
                          "--claim",
                          "tags=[\"a\"]",
                          "--claims-json",
                          "{\"team\":{\"id\":7},\"role\":\"user\"}",
                          "--expires-in",
                          "600"};
    int status = -1;
    int64_t before = (int64_t)time(NULL);
    char *output = run_token_command(sizeof(argv) / sizeof(argv[0]), argv, &status);
    int64_t after = (int64_t)time(NULL);
    assert_int_equal(status, 0);
    size_t length = strlen(output);
    assert_true(length > 1 && output[length - 1] == '\n');

    auth_jwt_t *jwt = verifier_new("HS256", SECRET, NULL, 0);
    const char *message = NULL;
    json_t *claims = auth_jwt_verify(jwt, output, length - 1, after, &message);
    if (claims == NULL)
        fail_msg("sioc token's token refused: %s (%s)", message, output);
    json_int_t issued = json_integer_value(json_object_get(claims, "iat"));
    assert_true(issued >= before && issued <= after);
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")), issued + 600);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "42");
    assert_string_equal(json_string_value(json_object_get(claims, "id")), "42");
    /* --claim after --claims-json on the command line, but the later one wins: "user". */
    assert_string_equal(json_string_value(json_object_get(claims, "role")), "user");
    assert_int_equal(json_integer_value(json_object_get(claims, "level")), 3);
    assert_string_equal(json_string_value(json_array_get(json_object_get(claims, "tags"), 0)), "a");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(claims, "team"), "id")), 7);
    assert_int_equal(json_object_size(claims), 8);
    json_decref(claims);
    free(output);
    auth_jwt_free(jwt);
}

static void test_token_command_defaults_and_environment(void **state)
{
    (void)state;
    const char *argv[] = {"token", "--subject", "alice", "--algorithm", "HS512", "--claim", "id=7"};
    int status = -1;
    setenv("SIOC_JWT_SECRET", SECRET, 1);
    char *output = run_token_command(sizeof(argv) / sizeof(argv[0]), argv, &status);
    unsetenv("SIOC_JWT_SECRET");
    assert_int_equal(status, 0);
    auth_jwt_t *jwt = verifier_new("HS512", SECRET, NULL, 0);
    const char *message = NULL;
    json_t *claims =
        auth_jwt_verify(jwt, output, strlen(output) - 1, (int64_t)time(NULL), &message);
    assert_non_null(claims);
    assert_int_equal(json_integer_value(json_object_get(claims, "exp")) -
                         json_integer_value(json_object_get(claims, "iat")),
                     3600);
    assert_string_equal(json_string_value(json_object_get(claims, "sub")), "alice");
    assert_int_equal(json_integer_value(json_object_get(claims, "id")), 7);
    json_decref(claims);
    auth_jwt_free(jwt);
    free(output);
}

static void test_token_command_usage_errors(void **state)
{
    (void)state;
    static const char *const cases[][8] = {
        {"token", "--subject", "42"}, /* no secret (and no $SIOC_JWT_SECRET) */
        {"token", "--secret", SECRET},
        {"token", "--secret", SECRET, "--subject", "42", "--algorithm", "RS256"},
        {"token", "--secret", SECRET, "--subject", "42", "--expires-in", "0"},
        {"token", "--secret", SECRET, "--subject", "42", "--expires-in", "10s"},
        {"token", "--secret", SECRET, "--subject", "42", "--expires-in", "999999999999"},
        {"token", "--secret", SECRET, "--subject", "42", "--claim", "novalue"},
        {"token", "--secret", SECRET, "--subject", "42", "--claim", "=x"},
        {"token", "--secret", SECRET, "--subject", "42", "--claims-json", "[1]"},
        {"token", "--secret", SECRET, "--subject", "42", "--claims-json", "{"},
        {"token", "--secret", SECRET, "--subject", "42", "--what", "x"},
        {"token", "--secret", SECRET, "--subject"},
        {"token", "--secret", SECRET, "--subject", "\xff"},
    };
    unsetenv("SIOC_JWT_SECRET");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int argc = 0;
        while (argc < 8 && cases[i][argc] != NULL)
            argc++;
        int status = -1;
        char *output = run_token_command(argc, (const char **)cases[i], &status);
        if (status == 0 || output[0] != '\0')
            fail_msg("case %zu: status %d, printed \"%s\"", i, status, output);
        free(output);
    }
    const char *help[] = {"token", "--help"};
    int status = -1;
    char *output = run_token_command(2, help, &status);
    assert_int_equal(status, 0);
    assert_non_null(strstr(output, "usage: sioc token"));
    free(output);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jsonwebtoken_tokens_verify),
        cmocka_unit_test(test_malformed_tokens_refused),
        cmocka_unit_test(test_embedded_nul_and_length_limit),
        cmocka_unit_test(test_alg_none_refused),
        cmocka_unit_test(test_algorithm_confusion_refused),
        cmocka_unit_test(test_bad_signatures_refused),
        cmocka_unit_test(test_time_boundaries),
        cmocka_unit_test(test_time_claim_types),
        cmocka_unit_test(test_bad_options_refused),
        cmocka_unit_test(test_sign_matches_jsonwebtoken),
        cmocka_unit_test(test_sign_refuses_bad_input),
        cmocka_unit_test(test_token_command),
        cmocka_unit_test(test_token_command_defaults_and_environment),
        cmocka_unit_test(test_token_command_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
