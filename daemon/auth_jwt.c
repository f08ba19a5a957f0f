/* JWT verification pinned to one algorithm, and HMAC signing for `sioc token`; see auth_jwt.h.
 * OpenSSL 3 EVP interfaces only. Refusals are checked in the order npm's jsonwebtoken checks
 * them, so a token refused by both gets the same message. */
#include "auth_jwt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#define RSA_MIN_BITS 2048        /* jsonwebtoken 9 refuses smaller RSA keys too */
#define MAX_SIGNATURE_BYTES 1024 /* RSA keys up to 8192 bits */
#define MAX_HMAC_BYTES 64
#define ES256_SIGNATURE_BYTES 64

typedef enum key_kind { KEY_HMAC, KEY_RSA, KEY_EC_P256 } key_kind_t;

typedef struct algorithm_s {
    const char *name;
    key_kind_t kind;
    const char *digest; /* OpenSSL digest name */
} algorithm_t;

static const algorithm_t algorithms[] = {
    {"HS256", KEY_HMAC, "SHA256"}, {"HS384", KEY_HMAC, "SHA384"},    {"HS512", KEY_HMAC, "SHA512"},
    {"RS256", KEY_RSA, "SHA256"},  {"ES256", KEY_EC_P256, "SHA256"},
};

struct auth_jwt_s {
    const algorithm_t *algorithm;
    unsigned char *secret; /* HS* */
    size_t secret_length;
    EVP_PKEY *public_key; /* RS256, ES256 */
    uint32_t leeway_seconds;
};

/* The three dot-separated segments of a compact JWS, as views into the token. */
typedef struct token_parts_s {
    const char *header, *payload, *signature;
    size_t header_length, payload_length, signature_length;
    size_t signing_input_length; /* "header.payload" */
} token_parts_t;

static const algorithm_t *algorithm_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < sizeof(algorithms) / sizeof(algorithms[0]); i++)
        if (strcmp(algorithms[i].name, name) == 0)
            return &algorithms[i];
    return NULL;
}

/* ---- base64url (RFC 4648 §5, no padding) --------------------------------------------------- */

static int base64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

static int base64url_alphabet_only(const char *text, size_t length)
{
    for (size_t i = 0; i < length; i++)
        if (base64url_value((unsigned char)text[i]) < 0)
            return 0;
    return 1;
}

/* Strict decoding: the URL-safe alphabet only, no '=', no length of 4n+1, and the unused low bits
 * of the last character zero, so each byte string has exactly one accepted encoding. out must
 * hold length * 3 / 4 bytes. Returns the decoded length, or -1. */
static long base64url_decode(const char *text, size_t length, unsigned char *out)
{
    if (length % 4 == 1)
        return -1;
    uint32_t bits = 0;
    unsigned bit_count = 0;
    size_t written = 0;
    for (size_t i = 0; i < length; i++) {
        int value = base64url_value((unsigned char)text[i]);
        if (value < 0)
            return -1;
        bits = (bits << 6 | (uint32_t)value) & 0xFFFFu;
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            out[written++] = (unsigned char)(bits >> bit_count);
        }
    }
    if ((bits & ((1u << bit_count) - 1)) != 0)
        return -1;
    return (long)written;
}

static size_t base64url_encoded_length(size_t length)
{
    return length / 3 * 4 + (length % 3 == 0 ? 0 : length % 3 + 1);
}

/* Writes base64url without padding; out holds base64url_encoded_length(length) bytes (no NUL). */
static size_t base64url_encode(const unsigned char *data, size_t length, char *out)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t written = 0;
    uint32_t bits = 0;
    unsigned bit_count = 0;
    for (size_t i = 0; i < length; i++) {
        bits = (bits << 8 | data[i]) & 0xFFFFu;
        bit_count += 8;
        while (bit_count >= 6) {
            bit_count -= 6;
            out[written++] = alphabet[(bits >> bit_count) & 0x3F];
        }
    }
    if (bit_count > 0)
        out[written++] = alphabet[(bits << (6 - bit_count)) & 0x3F];
    return written;
}

/* ---- keys ---------------------------------------------------------------------------------- */

/* A SubjectPublicKeyInfo PEM ("BEGIN PUBLIC KEY"), or the key of an X.509 certificate PEM, as
 * Node's crypto.createPublicKey accepts both. */
static EVP_PKEY *public_key_parse(const char *pem)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    if (bio == NULL)
        return NULL;
    EVP_PKEY *key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (key == NULL && BIO_reset(bio) == 1) {
        X509 *certificate = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        key = certificate != NULL ? X509_get_pubkey(certificate) : NULL;
        X509_free(certificate);
    }
    BIO_free(bio);
    ERR_clear_error(); /* failed PEM attempts leave errors queued that are not ours to report */
    return key;
}

static int key_is_p256(EVP_PKEY *key)
{
    char group[64];
    size_t group_length = 0;
    if (!EVP_PKEY_is_a(key, "EC"))
        return 0;
    if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                       &group_length) != 1)
        return 0;
    return strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0;
}

/* Checks that the key is of the kind the algorithm needs; 0, or -1 with error filled. */
static int public_key_check(EVP_PKEY *key, const algorithm_t *algorithm, char *error,
                            size_t error_size)
{
    if (algorithm->kind == KEY_RSA) {
        if (!EVP_PKEY_is_a(key, "RSA")) {
            snprintf(error, error_size, "%s needs an RSA public key", algorithm->name);
            return -1;
        }
        if (EVP_PKEY_get_bits(key) < RSA_MIN_BITS) {
            snprintf(error, error_size, "%s needs an RSA key of %d bits or more (this one has %d)",
                     algorithm->name, RSA_MIN_BITS, EVP_PKEY_get_bits(key));
            return -1;
        }
        return 0;
    }
    if (!key_is_p256(key)) {
        snprintf(error, error_size, "%s needs an EC public key on curve P-256", algorithm->name);
        return -1;
    }
    return 0;
}

static int configure_secret(auth_jwt_t *jwt, const char *secret, char *error, size_t error_size)
{
    if (secret == NULL || secret[0] == '\0') {
        snprintf(error, error_size, "%s needs a secret", jwt->algorithm->name);
        return -1;
    }
    /* A public key used as an HMAC secret is the algorithm confusion attack's precondition:
     * anyone holding the (public) key could mint tokens. */
    if (strstr(secret, "-----BEGIN") != NULL) {
        snprintf(error, error_size,
                 "%s secret is a PEM key; an HMAC secret must be a shared secret (use RS256 or "
                 "ES256 with a public key)",
                 jwt->algorithm->name);
        return -1;
    }
    jwt->secret_length = strlen(secret);
    jwt->secret = (unsigned char *)strdup(secret);
    if (jwt->secret == NULL) {
        snprintf(error, error_size, "out of memory");
        return -1;
    }
    return 0;
}

static int configure_public_key(auth_jwt_t *jwt, const char *pem, char *error, size_t error_size)
{
    if (pem == NULL || pem[0] == '\0') {
        snprintf(error, error_size, "%s needs a public key (PEM)", jwt->algorithm->name);
        return -1;
    }
    jwt->public_key = public_key_parse(pem);
    if (jwt->public_key == NULL) {
        snprintf(error, error_size, "%s public key: not a PEM public key or certificate",
                 jwt->algorithm->name);
        return -1;
    }
    return public_key_check(jwt->public_key, jwt->algorithm, error, error_size);
}

auth_jwt_t *auth_jwt_new(const auth_jwt_options_t *options, char *error, size_t error_size)
{
    const algorithm_t *algorithm = algorithm_find(options->algorithm);
    if (algorithm == NULL) {
        snprintf(error, error_size,
                 "unknown JWT algorithm \"%s\" (expected HS256, HS384, HS512, RS256 or ES256)",
                 options->algorithm != NULL ? options->algorithm : "");
        return NULL;
    }
    auth_jwt_t *jwt = calloc(1, sizeof(*jwt));
    if (jwt == NULL) {
        snprintf(error, error_size, "out of memory");
        return NULL;
    }
    jwt->algorithm = algorithm;
    jwt->leeway_seconds = options->leeway_seconds;
    /* The configured algorithm alone picks which option is the key; the other one is ignored. */
    int status = algorithm->kind == KEY_HMAC
                     ? configure_secret(jwt, options->secret, error, error_size)
                     : configure_public_key(jwt, options->public_key_pem, error, error_size);
    if (status != 0)
        goto err;
    return jwt;
err:
    auth_jwt_free(jwt);
    return NULL;
}

void auth_jwt_free(auth_jwt_t *jwt)
{
    if (jwt == NULL)
        return;
    if (jwt->secret != NULL)
        OPENSSL_cleanse(jwt->secret, jwt->secret_length);
    free(jwt->secret);
    EVP_PKEY_free(jwt->public_key);
    free(jwt);
}

/* ---- signatures ---------------------------------------------------------------------------- */

static int hmac_compute(const char *digest, const void *key, size_t key_length, const char *data,
                        size_t length, unsigned char *out, size_t *out_length)
{
    return EVP_Q_mac(NULL, "HMAC", NULL, digest, NULL, key, key_length, (const unsigned char *)data,
                     length, out, MAX_HMAC_BYTES, out_length) != NULL
               ? 0
               : -1;
}

static int hmac_verify(const auth_jwt_t *jwt, const token_parts_t *parts,
                       const unsigned char *signature, size_t signature_length)
{
    unsigned char expected[MAX_HMAC_BYTES];
    size_t expected_length = 0;
    if (hmac_compute(jwt->algorithm->digest, jwt->secret, jwt->secret_length, parts->header,
                     parts->signing_input_length, expected, &expected_length) != 0)
        return 0;
    return signature_length == expected_length &&
           CRYPTO_memcmp(expected, signature, expected_length) == 0;
}

/* JWS carries ECDSA signatures as r || s (RFC 7518 §3.4); OpenSSL verifies DER. Writes the DER
 * form into der (72 bytes suffice for P-256) and returns its length, or -1. */
static int ecdsa_signature_to_der(const unsigned char *signature, unsigned char *der,
                                  size_t der_size)
{
    int length = -1;
    ECDSA_SIG *ecdsa = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(signature, ES256_SIGNATURE_BYTES / 2, NULL);
    BIGNUM *s = BN_bin2bn(signature + ES256_SIGNATURE_BYTES / 2, ES256_SIGNATURE_BYTES / 2, NULL);
    if (ecdsa == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(ecdsa, r, s) != 1)
        goto done;
    r = s = NULL; /* owned by ecdsa now */
    if (i2d_ECDSA_SIG(ecdsa, NULL) > (int)der_size)
        goto done;
    unsigned char *cursor = der;
    length = i2d_ECDSA_SIG(ecdsa, &cursor);
done:
    BN_free(r);
    BN_free(s);
    ECDSA_SIG_free(ecdsa);
    return length;
}

static int public_key_verify(const auth_jwt_t *jwt, const token_parts_t *parts,
                             const unsigned char *signature, size_t signature_length)
{
    unsigned char der[80];
    if (jwt->algorithm->kind == KEY_EC_P256) {
        if (signature_length != ES256_SIGNATURE_BYTES)
            return 0;
        int der_length = ecdsa_signature_to_der(signature, der, sizeof(der));
        if (der_length <= 0)
            return 0;
        signature = der;
        signature_length = (size_t)der_length;
    }
    EVP_MD_CTX *context = EVP_MD_CTX_new();
    int valid =
        context != NULL &&
        EVP_DigestVerifyInit_ex(context, NULL, jwt->algorithm->digest, NULL, NULL, jwt->public_key,
                                NULL) == 1 &&
        EVP_DigestVerify(context, signature, signature_length, (const unsigned char *)parts->header,
                         parts->signing_input_length) == 1;
    EVP_MD_CTX_free(context);
    ERR_clear_error(); /* a bad signature is an answer, not an error to keep queued */
    return valid;
}

static int signature_valid(const auth_jwt_t *jwt, const token_parts_t *parts)
{
    unsigned char signature[MAX_SIGNATURE_BYTES];
    if (parts->signature_length > MAX_SIGNATURE_BYTES / 3 * 4)
        return 0;
    long length = base64url_decode(parts->signature, parts->signature_length, signature);
    if (length < 0)
        return 0;
    if (jwt->algorithm->kind == KEY_HMAC)
        return hmac_verify(jwt, parts, signature, (size_t)length);
    return public_key_verify(jwt, parts, signature, (size_t)length);
}

/* ---- verification -------------------------------------------------------------------------- */

/* Exactly two dots; 0 or -1. */
static int token_split(const char *token, size_t length, token_parts_t *parts)
{
    const char *first = memchr(token, '.', length);
    if (first == NULL)
        return -1;
    const char *second = memchr(first + 1, '.', length - (size_t)(first + 1 - token));
    if (second == NULL || memchr(second + 1, '.', length - (size_t)(second + 1 - token)) != NULL)
        return -1;
    parts->header = token;
    parts->header_length = (size_t)(first - token);
    parts->payload = first + 1;
    parts->payload_length = (size_t)(second - parts->payload);
    parts->signature = second + 1;
    parts->signature_length = length - (size_t)(parts->signature - token);
    parts->signing_input_length = (size_t)(second - token);
    return 0;
}

/* A non-empty base64url segment holding a JSON object; a new reference or NULL. */
static json_t *segment_decode(const char *segment, size_t length)
{
    if (length == 0)
        return NULL;
    unsigned char *decoded = malloc(length / 4 * 3 + 3);
    if (decoded == NULL)
        return NULL;
    long decoded_length = base64url_decode(segment, length, decoded);
    json_t *value = decoded_length < 0
                        ? NULL
                        : json_loadb((const char *)decoded, (size_t)decoded_length, 0, NULL);
    free(decoded);
    if (value != NULL && !json_is_object(value)) {
        json_decref(value);
        value = NULL;
    }
    return value;
}

/* jsonwebtoken's comparisons, in seconds and in doubles as JavaScript computes them:
 * refused when nbf > now + leeway, or when now >= exp + leeway. */
static const char *times_check(const json_t *claims, int64_t now, uint32_t leeway)
{
    const json_t *not_before = json_object_get(claims, "nbf");
    if (not_before != NULL) {
        if (!json_is_number(not_before))
            return "invalid nbf value";
        if (json_number_value(not_before) > (double)now + leeway)
            return "jwt not active";
    }
    const json_t *expires = json_object_get(claims, "exp");
    if (expires != NULL) {
        if (!json_is_number(expires))
            return "invalid exp value";
        if ((double)now >= json_number_value(expires) + leeway)
            return "jwt expired";
    }
    return NULL;
}

/* Every check before the claims are trusted, in jsonwebtoken's order; NULL when they pass. */
static const char *token_check(const auth_jwt_t *jwt, const token_parts_t *parts,
                               const json_t *header)
{
    if (parts->signature_length == 0)
        return "jwt signature is required";
    const char *algorithm = json_string_value(json_object_get(header, "alg"));
    /* Only compared, never used to choose how to verify: "none" and confusion stop here. */
    if (algorithm == NULL || strcmp(algorithm, jwt->algorithm->name) != 0)
        return "invalid algorithm";
    if (!signature_valid(jwt, parts))
        return "invalid signature";
    return NULL;
}

json_t *auth_jwt_verify(const auth_jwt_t *jwt, const char *token, size_t length, int64_t now,
                        const char **message)
{
    token_parts_t parts;
    if (length == 0) {
        *message = "jwt must be provided";
        return NULL;
    }
    if (length > AUTH_JWT_MAX_TOKEN_LENGTH || token_split(token, length, &parts) != 0) {
        *message = "jwt malformed";
        return NULL;
    }
    if (!base64url_alphabet_only(parts.signature, parts.signature_length)) {
        *message = "invalid token";
        return NULL;
    }
    json_t *header = segment_decode(parts.header, parts.header_length);
    json_t *claims = header != NULL ? segment_decode(parts.payload, parts.payload_length) : NULL;
    *message = claims == NULL ? "invalid token" : token_check(jwt, &parts, header);
    if (*message == NULL)
        *message = times_check(claims, now, jwt->leeway_seconds);
    json_decref(header);
    if (*message != NULL) {
        json_decref(claims);
        return NULL;
    }
    return claims;
}

/* ---- signing ------------------------------------------------------------------------------- */

/* base64url(header) "." base64url(payload) "." base64url(HMAC of what precedes): malloc'd. */
static char *token_assemble(const algorithm_t *algorithm, const char *secret, const char *payload)
{
    char header[64];
    int header_length = snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
                                 algorithm->name); /* jsonwebtoken's header, byte for byte */
    size_t payload_length = strlen(payload);
    char *token = malloc(base64url_encoded_length((size_t)header_length) + 1 +
                         base64url_encoded_length(payload_length) + 1 +
                         base64url_encoded_length(MAX_HMAC_BYTES) + 1);
    if (token == NULL)
        return NULL;
    size_t used = base64url_encode((const unsigned char *)header, (size_t)header_length, token);
    token[used++] = '.';
    used += base64url_encode((const unsigned char *)payload, payload_length, token + used);
    unsigned char mac[MAX_HMAC_BYTES];
    size_t mac_length = 0;
    if (hmac_compute(algorithm->digest, secret, strlen(secret), token, used, mac, &mac_length) !=
        0) {
        free(token);
        return NULL;
    }
    token[used++] = '.';
    used += base64url_encode(mac, mac_length, token + used);
    token[used] = '\0';
    return token;
}

char *auth_jwt_sign_hmac(const char *algorithm_name, const char *secret, json_t *claims)
{
    const algorithm_t *algorithm = algorithm_find(algorithm_name);
    if (algorithm == NULL || algorithm->kind != KEY_HMAC || secret == NULL || secret[0] == '\0' ||
        !json_is_object(claims))
        return NULL;
    char *payload = json_dumps(claims, JSON_COMPACT); /* JSON.stringify's separators */
    char *token = payload != NULL ? token_assemble(algorithm, secret, payload) : NULL;
    free(payload);
    return token;
}
