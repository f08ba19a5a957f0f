/* Fuzzes JWT verification: the input, as a token, goes to an HS256 and an ES256 verifier (the
 * corpus holds tokens that verify, so mutations explore every step past decoding). Beyond
 * memory errors it checks the contract: an answer is either a JSON object or one of the
 * documented messages, never both, never neither.
 *
 * The input is also tried as claims: when it parses as a JSON object, signing it with HS256 and
 * verifying the result must give back equal claims, or a refusal that only the claims' own
 * exp/nbf can explain. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth_jwt.h"

#define SECRET "sioc-test-secret"
#define NOW 1700000000

static const char ec_public_pem[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEFhJ8ylR+XgSU6TPxPKsWZBbhzl7A\n"
    "o9frlVwN9hnJkt02aGpOSXup0ggx5UVcZURIsOxKOz77Wlh5Q69/TdVfag==\n"
    "-----END PUBLIC KEY-----\n";

static const char *const messages[] = {
    "jwt must be provided", "jwt malformed",     "invalid token",     "jwt signature is required",
    "invalid algorithm",    "invalid signature", "invalid nbf value", "jwt not active",
    "invalid exp value",    "jwt expired",
};

static void require(int condition)
{
    if (!condition)
        abort();
}

static int known_message(const char *message)
{
    for (size_t i = 0; message != NULL && i < sizeof(messages) / sizeof(messages[0]); i++)
        if (strcmp(message, messages[i]) == 0)
            return 1;
    return 0;
}

static auth_jwt_t *verifier(const char *algorithm, const char *secret, const char *pem)
{
    char error[256];
    auth_jwt_options_t options = {algorithm, secret, pem, 30};
    auth_jwt_t *jwt = auth_jwt_new(&options, error, sizeof(error));
    require(jwt != NULL);
    return jwt;
}

static void verify_once(const auth_jwt_t *jwt, const char *token, size_t length)
{
    const char *message = NULL;
    json_t *claims = auth_jwt_verify(jwt, token, length, NOW, &message);
    if (claims != NULL) {
        require(json_is_object(claims));
    } else {
        require(known_message(message));
    }
    json_decref(claims);
}

static void sign_round_trip(const auth_jwt_t *jwt, const uint8_t *data, size_t size)
{
    json_t *claims = json_loadb((const char *)data, size, 0, NULL);
    if (claims == NULL || !json_is_object(claims)) {
        json_decref(claims);
        return;
    }
    char *token = auth_jwt_sign_hmac("HS256", SECRET, claims);
    require(token != NULL);
    const char *message = NULL;
    json_t *verified = auth_jwt_verify(jwt, token, strlen(token), NOW, &message);
    if (verified != NULL) {
        require(json_equal(verified, claims));
    } else {
        int timed =
            json_object_get(claims, "exp") != NULL || json_object_get(claims, "nbf") != NULL;
        /* Or too long for the verifier, which is only a matter of size. */
        require((timed && known_message(message)) || strlen(token) > AUTH_JWT_MAX_TOKEN_LENGTH);
    }
    json_decref(verified);
    free(token);
    json_decref(claims);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static auth_jwt_t *hs256, *es256;
    if (hs256 == NULL) {
        hs256 = verifier("HS256", SECRET, NULL);
        es256 = verifier("ES256", NULL, ec_public_pem);
    }
    /* An exact-size copy, so that reading past the given length is caught. */
    char *token = malloc(size > 0 ? size : 1);
    require(token != NULL);
    memcpy(token, data, size);
    verify_once(hs256, token, size);
    verify_once(es256, token, size);
    free(token);
    sign_round_trip(hs256, data, size);
    return 0;
}
