/* JSON Web Tokens (RFC 7519, JWS compact form) for the daemon: verification with the algorithm
 * pinned by configuration, and minting for development (`sioc token`). Pure: no I/O.
 *
 * Verification refuses, with a message the client sees after "Authentication error: ", in
 * this order (that of npm's jsonwebtoken 9, whose messages the seeds' clients already show):
 *   "jwt must be provided"       empty token
 *   "jwt malformed"              not three dot-separated segments, or longer than
 *                                AUTH_JWT_MAX_TOKEN_LENGTH
 *   "invalid token"              a character outside the base64url alphabet; a header or
 *                                payload that is empty, not strict base64url (no padding,
 *                                canonical) or not a JSON object
 *   "jwt signature is required"  empty signature ("alg":"none" tokens end up here)
 *   "invalid algorithm"          "alg" missing or other than the configured one
 *   "invalid signature"          signature does not verify (or is not canonical base64url)
 *   "invalid nbf value", "jwt not active"   nbf not a number, nbf > now + leeway
 *   "invalid exp value", "jwt expired"      exp not a number, now >= exp + leeway
 * Algorithms: HS256, HS384, HS512 with a shared secret; RS256 and ES256 with a PEM public key
 * (ES256 signatures are the 64-byte r||s of JWS, not DER). A key of the wrong kind for the
 * configured algorithm is a configuration error (algorithm confusion cannot arise: the header's
 * alg is only compared, never used to pick the key): an HS* secret that is a PEM key, an RSA key
 * under 2048 bits, an EC key not on P-256. The public key is a "BEGIN PUBLIC KEY" PEM or an
 * X.509 certificate PEM; the option the configured algorithm does not use is ignored. */
#ifndef SIOC_DAEMON_AUTH_JWT_H
#define SIOC_DAEMON_AUTH_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Longer tokens are refused as malformed: browsers and proxies cap headers well below this. */
#define AUTH_JWT_MAX_TOKEN_LENGTH 16384

typedef struct auth_jwt_s auth_jwt_t;

typedef struct auth_jwt_options_s {
    const char *algorithm;      /* "HS256" ... */
    const char *secret;         /* HS*: the shared secret */
    const char *public_key_pem; /* RS256/ES256: PEM text of the public key */
    uint32_t leeway_seconds;    /* clock skew tolerated for exp/nbf (0) */
} auth_jwt_options_t;

/* NULL with error filled when the options do not make a usable verifier. */
auth_jwt_t *auth_jwt_new(const auth_jwt_options_t *options, char *error, size_t error_size);
void auth_jwt_free(auth_jwt_t *jwt);

/* Verifies token at time now (seconds since the epoch). Returns the claims (a new reference:
 * json_decref it) or NULL with *message set to a static reason. */
json_t *auth_jwt_verify(const auth_jwt_t *jwt, const char *token, size_t length, int64_t now,
                        const char **message);

/* HS256/384/512 token for claims (borrowed); malloc'd string or NULL. For `sioc token`. */
char *auth_jwt_sign_hmac(const char *algorithm, const char *secret, json_t *claims);

#endif
