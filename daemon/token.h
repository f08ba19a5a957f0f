/* `sioc token`: mints an HS256/HS384/HS512 JWT for development and tests, e.g.
 *   sioc token --secret S --subject 42 --claim role=admin --expires-in 600
 * The claims are sub and id (the subject, as strings), iat (now), exp (now + --expires-in,
 * 3600 by default), then those of --claims-json and each --claim key=value in the order given,
 * a later one replacing an earlier one (so `--claim id=42` makes id a number). A value that
 * parses as JSON is used as JSON (42, true, {"a":1}), anything else as a string. The secret
 * comes from --secret, else from $SIOC_JWT_SECRET (which keeps it out of `ps`). */
#ifndef SIOC_DAEMON_TOKEN_H
#define SIOC_DAEMON_TOKEN_H

/* argv[0] is the command's name ("token"), options follow. Prints the token and a newline on
 * stdout; returns 0, 1 when signing failed, 2 for bad usage (with a message on stderr). */
int token_main(int argc, char **argv);

#endif
