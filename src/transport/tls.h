/* TLS on a connection (OpenSSL), as a filter between the TCP stream and the protocol handler.
 *
 * OpenSSL never touches the socket: its BIO reads the ciphertext the connection hands it for
 * the duration of one call (a view into the loop's shared read buffer) and writes the records
 * it makes into one output buffer, which the connection queues on the wire as any other slice.
 * So an idle TLS connection holds its SSL object and nothing else (SSL_MODE_RELEASE_BUFFERS
 * gives OpenSSL's record buffers back when they are empty), the corked write path and its cap
 * stay as they are, and the handshake runs on the loop like any other input.
 *
 * Input the handler was not ready for (it paused reading) is copied (at most one read) and
 * handed in again once it resumes: sioc__tls_keep_input / sioc__tls_has_input. */
#ifndef SIOC_TRANSPORT_TLS_H
#define SIOC_TRANSPORT_TLS_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buffer.h"

/* The largest plaintext of one record: one sioc__tls_read never returns more. */
#define SIOC_TLS_RECORD_SIZE 16384

typedef struct sioc__tls_s sioc__tls_t;

/* A server context from PEM files (the certificate chain, leaf first, and its private key):
 * TLS 1.2 and 1.3 only, OpenSSL's default ciphers, ALPN "http/1.1", no renegotiation, record
 * buffers released when idle. NULL with a message in error (file, and OpenSSL's reason). */
SSL_CTX *sioc__tls_context_new(const char *cert_file, const char *key_file, char *error,
                               size_t error_size);

/* The server side of one connection on ctx (which SSL_new references), or NULL. */
sioc__tls_t *sioc__tls_new(SSL_CTX *ctx);
void sioc__tls_free(sioc__tls_t *tls); /* accepts NULL */

/* Ciphertext for the next sioc__tls_read calls: a view, valid until the caller returns to the
 * loop; what was not consumed then must be kept (sioc__tls_keep_input) or is lost. Input kept
 * earlier comes first: new bytes are appended to it. 0, or -1 out of memory. */
int sioc__tls_set_input(sioc__tls_t *tls, const uint8_t *data, size_t length);
int sioc__tls_keep_input(sioc__tls_t *tls);
int sioc__tls_has_input(const sioc__tls_t *tls);

enum {
    SIOC__TLS_WANT_INPUT = 0, /* no whole record yet */
    SIOC__TLS_CLOSED = -1,    /* the peer's close_notify */
    SIOC__TLS_FAILED = -2,    /* a fatal error (bad record, failed handshake); an alert may be
                                 waiting in the output */
};

/* Decrypts into out (SIOC_TLS_RECORD_SIZE bytes): the plaintext length, or one of the above.
 * Runs the handshake first. */
int sioc__tls_read(sioc__tls_t *tls, uint8_t *out, size_t size);

/* 1 once the handshake finished (application data may be written). */
int sioc__tls_ready(const sioc__tls_t *tls);

/* Encrypts bytes into the output. Only once ready. 0, or -1 (fatal: drop the connection). */
int sioc__tls_write(sioc__tls_t *tls, const void *bytes, size_t length);

/* Adds our close_notify to the output, once, when the session is up and healthy. */
void sioc__tls_shutdown(sioc__tls_t *tls);

/* The records made so far (the caller owns the reference; NULL when none) and their length. */
sioc__buffer_t *sioc__tls_take_output(sioc__tls_t *tls, size_t *length);
int sioc__tls_has_output(const sioc__tls_t *tls);

#endif
