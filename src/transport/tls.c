#include "transport/tls.h"

#include <openssl/err.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sioc.h"

/* Output buffers start at this size (a handshake flight with a short chain fits) and double. */
#define OUTPUT_INITIAL_SIZE 4096

struct sioc__tls_s {
    SSL *ssl;
    const uint8_t *input; /* the view being read, or kept's unread part */
    size_t input_length;
    uint8_t *kept; /* owned copy of input the handler was not ready for */
    sioc__buffer_t *output;
    size_t output_length;
    uint8_t failed;
    uint8_t shutdown_sent;
};

/* ---- the BIO: reads the current input view, appends to the output buffer -------------------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_method_once = PTHREAD_ONCE_INIT;

static int bio_read(BIO *bio, char *out, int size)
{
    sioc__tls_t *tls = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (tls->input_length == 0) {
        BIO_set_retry_read(bio);
        return -1;
    }
    size_t length = tls->input_length < (size_t)size ? tls->input_length : (size_t)size;
    memcpy(out, tls->input, length);
    tls->input += length;
    tls->input_length -= length;
    return (int)length;
}

static int grow_output(sioc__tls_t *tls, size_t more)
{
    size_t capacity = tls->output != NULL ? tls->output->length : 0;
    if (tls->output_length + more <= capacity)
        return 0;
    size_t wanted = capacity > 0 ? capacity : OUTPUT_INITIAL_SIZE;
    while (wanted < tls->output_length + more)
        wanted *= 2;
    sioc__buffer_t *grown = sioc__buffer_new(wanted, 1);
    if (grown == NULL)
        return -1;
    if (tls->output_length > 0)
        memcpy(grown->data, tls->output->data, tls->output_length);
    sioc__buffer_unref(tls->output);
    tls->output = grown;
    return 0;
}

static int bio_write(BIO *bio, const char *bytes, int length)
{
    sioc__tls_t *tls = BIO_get_data(bio);
    BIO_clear_retry_flags(bio);
    if (length <= 0)
        return 0;
    if (grow_output(tls, (size_t)length) != 0)
        return -1;
    memcpy(tls->output->data + tls->output_length, bytes, (size_t)length);
    tls->output_length += (size_t)length;
    return length;
}

static long bio_ctrl(BIO *bio, int command, long number, void *pointer)
{
    /* Writes always succeed at once, so there is nothing to flush; nothing else is needed. */
    return command == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *bio)
{
    BIO_set_init(bio, 1);
    return 1;
}

static void make_bio_method(void)
{
    BIO_METHOD *method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sioc");
    if (method == NULL || !BIO_meth_set_read(method, bio_read) ||
        !BIO_meth_set_write(method, bio_write) || !BIO_meth_set_ctrl(method, bio_ctrl) ||
        !BIO_meth_set_create(method, bio_create)) {
        BIO_meth_free(method);
        return;
    }
    bio_method = method;
}

/* ---- contexts -------------------------------------------------------------------------------- */

static int select_alpn(SSL *ssl, const unsigned char **out, unsigned char *out_length,
                       const unsigned char *in, unsigned int in_length, void *data)
{
    static const unsigned char http11[] = "\x08http/1.1";
    unsigned char *selected;
    if (SSL_select_next_proto(&selected, out_length, http11, sizeof(http11) - 1, in, in_length) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK; /* a client offering only h2 still gets HTTP/1.1, as nginx */
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *context_error(SSL_CTX *ctx, char *error, size_t error_size, const char *what,
                              const char *file)
{
    char reason[256] = "";
    unsigned long code = ERR_peek_last_error();
    if (code != 0)
        ERR_error_string_n(code, reason, sizeof(reason));
    ERR_clear_error();
    snprintf(error, error_size, "%s %s: %s", what, file ? file : "", code ? reason : "failed");
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *sioc__tls_context_new(const char *cert_file, const char *key_file, char *error,
                               size_t error_size)
{
    if (cert_file == NULL || key_file == NULL) {
        snprintf(error, error_size, "a certificate file and a key file are both needed");
        return NULL;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return context_error(NULL, error, error_size, "TLS context", NULL);
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_alpn_select_cb(ctx, select_alpn, NULL);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1)
        return context_error(ctx, error, error_size, "certificate", cert_file);
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1)
        return context_error(ctx, error, error_size, "private key", key_file);
    if (SSL_CTX_check_private_key(ctx) != 1)
        return context_error(ctx, error, error_size, "private key (does not match the certificate)",
                             key_file);
    return ctx;
}

SSL_CTX *sioc_tls_context_new(const char *cert_file, const char *key_file, char *error,
                              size_t error_size)
{
    char ignored[1];
    if (error == NULL || error_size == 0) {
        error = ignored;
        error_size = sizeof(ignored);
    }
    return sioc__tls_context_new(cert_file, key_file, error, error_size);
}

void sioc_tls_context_free(SSL_CTX *ctx)
{
    SSL_CTX_free(ctx);
}

/* ---- connections ---------------------------------------------------------------------------- */

sioc__tls_t *sioc__tls_new(SSL_CTX *ctx)
{
    pthread_once(&bio_method_once, make_bio_method);
    if (bio_method == NULL)
        return NULL;
    sioc__tls_t *tls = calloc(1, sizeof(*tls));
    if (tls == NULL)
        return NULL;
    BIO *bio = BIO_new(bio_method);
    tls->ssl = bio != NULL ? SSL_new(ctx) : NULL;
    if (tls->ssl == NULL) {
        BIO_free(bio);
        free(tls);
        return NULL;
    }
    BIO_set_data(bio, tls);
    SSL_set_bio(tls->ssl, bio, bio); /* one BIO for both directions: SSL_free frees it once */
    SSL_set_mode(tls->ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_set_accept_state(tls->ssl);
    return tls;
}

void sioc__tls_free(sioc__tls_t *tls)
{
    if (tls == NULL)
        return;
    SSL_free(tls->ssl);
    free(tls->kept);
    sioc__buffer_unref(tls->output);
    free(tls);
}

int sioc__tls_set_input(sioc__tls_t *tls, const uint8_t *data, size_t length)
{
    if (tls->kept == NULL) {
        tls->input = data;
        tls->input_length = length;
        return 0;
    }
    size_t left = tls->input_length;
    uint8_t *kept = malloc(left + length);
    if (kept == NULL)
        return -1;
    memcpy(kept, tls->input, left);
    memcpy(kept + left, data, length);
    free(tls->kept);
    tls->kept = kept;
    tls->input = kept;
    tls->input_length = left + length;
    return 0;
}

int sioc__tls_keep_input(sioc__tls_t *tls)
{
    if (tls->input_length == 0) {
        free(tls->kept);
        tls->kept = NULL;
        tls->input = NULL;
        return 0;
    }
    if (tls->kept != NULL && tls->input == tls->kept)
        return 0;
    uint8_t *kept = malloc(tls->input_length);
    if (kept == NULL)
        return -1;
    memcpy(kept, tls->input, tls->input_length);
    free(tls->kept);
    tls->kept = kept;
    tls->input = kept;
    return 0;
}

int sioc__tls_has_input(const sioc__tls_t *tls)
{
    return tls->input_length > 0;
}

int sioc__tls_read(sioc__tls_t *tls, uint8_t *out, size_t size)
{
    if (tls->failed)
        return SIOC__TLS_FAILED;
    int length = SSL_read(tls->ssl, out, (int)(size > INT32_MAX ? INT32_MAX : size));
    if (length > 0)
        return length;
    int reason = SSL_get_error(tls->ssl, length);
    if (reason == SSL_ERROR_WANT_READ)
        return SIOC__TLS_WANT_INPUT;
    ERR_clear_error(); /* the queue is per thread: leave nothing for another connection */
    if (reason == SSL_ERROR_ZERO_RETURN)
        return SIOC__TLS_CLOSED;
    tls->failed = 1;
    return SIOC__TLS_FAILED;
}

int sioc__tls_ready(const sioc__tls_t *tls)
{
    return !tls->failed && SSL_is_init_finished(tls->ssl);
}

int sioc__tls_write(sioc__tls_t *tls, const void *bytes, size_t length)
{
    if (!sioc__tls_ready(tls))
        return -1;
    while (length > 0) {
        int chunk = length > INT32_MAX ? INT32_MAX : (int)length;
        int written = SSL_write(tls->ssl, bytes, chunk);
        if (written <= 0) {
            ERR_clear_error();
            tls->failed = 1;
            return -1;
        }
        bytes = (const uint8_t *)bytes + written;
        length -= (size_t)written;
    }
    return 0;
}

void sioc__tls_shutdown(sioc__tls_t *tls)
{
    if (tls->shutdown_sent || !sioc__tls_ready(tls))
        return;
    tls->shutdown_sent = 1;
    /* 0 is the normal answer here (our alert is out, the peer's is not in): we do not wait. */
    if (SSL_shutdown(tls->ssl) < 0)
        ERR_clear_error();
}

sioc__buffer_t *sioc__tls_take_output(sioc__tls_t *tls, size_t *length)
{
    sioc__buffer_t *output = tls->output;
    *length = tls->output_length;
    tls->output = NULL;
    tls->output_length = 0;
    return output;
}

int sioc__tls_has_output(const sioc__tls_t *tls)
{
    return tls->output_length > 0;
}
