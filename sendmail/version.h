/*
 * version.h - what `mailshim --version` prints.
 */
#ifndef MAILSHIM_VERSION_H
#define MAILSHIM_VERSION_H

#include <stdio.h>

/*
 * The versions mailshim runs with (libcurl, OpenSSL: at run time, with the
 * ones it was built with when they differ; iniparser: as built), then one
 * line per libcurl feature whose use depends on the run-time version.
 */
void version_print(FILE *f);

#endif
