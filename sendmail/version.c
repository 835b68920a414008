/*
 * version.c - `mailshim --version`.
 *
 * An administrator asking "what is this sendmail" wants the libraries it
 * really runs with: a libcurl or OpenSSL upgraded under the binary is
 * shown as it is now, next to what the binary was built against.  The
 * libcurl features are decided at run time (submit.c), so their lines say
 * what this process would do.
 */
#include "config.h"

#include "submit.h"
#include "version.h"

void
version_print(FILE *f)
{
	fprintf(f, "mailshim %s\n", PACKAGE_VERSION);
	fprintf(f, "%s\n", submit_library_version());
	fprintf(f, "%s\n", submit_crypto_version());
	fprintf(f, "iniparser %s (built with)\n", INIPARSER_VERSION);
	fprintf(f, "ESMTP parameters: %s\n", submit_params_support());
	fprintf(f, "CR/LF in addresses: %s\n", submit_crlf_check());
}
