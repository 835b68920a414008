#!/bin/sh
# quickstart.sh - build mailshim on Debian 12 from this checkout, installing
# what it needs, then either run the demo or the whole test suite.
#
#   ./quickstart.sh demo    build, then send a message through a local demo
#                           relay (STARTTLS + AUTH PLAIN, NHN Cloud style)
#   ./quickstart.sh check   build, then run every test (make check)
#   ./quickstart.sh deps    only install the Debian packages
set -eu
cd "$(dirname "$0")"

BUILD_DEPS="build-essential autoconf automake pkgconf libcurl4-openssl-dev
 libssl-dev libiniparser-dev"
# the relay and the CA; the manual pages' checks; the real callers of
# docs/COMPAT.md (those that would pull in a mail transport agent, or that
# Debian 12 lacks, are fetched and unpacked by compat-tests/callers-fetch)
TEST_DEPS="python3 python3-aiosmtpd openssl xz-utils man-db groff-base
 php-cli php-mbstring libphp-phpmailer php-symfony-mailer php-swiftmailer
 git git-email libmailtools-perl s-nail neomutt util-linux mount passwd"

deps() {
	missing=
	for p in $BUILD_DEPS $TEST_DEPS; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
		    grep -q 'install ok installed' || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	sudo=
	[ "$(id -u)" = 0 ] || sudo=sudo
	echo "quickstart: installing$missing"
	$sudo apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing \
	    >/dev/null
}

# Out of the source tree, in $BUILD_DIR (default build/), so that other
# configurations (sanitizers, distcheck) can sit beside it.
BUILD_DIR=${BUILD_DIR:-build}
build() {
	[ -x configure ] || ./autogen.sh >/dev/null 2>&1
	mkdir -p "$BUILD_DIR"
	[ -f "$BUILD_DIR/Makefile" ] ||
	    (cd "$BUILD_DIR" && ../configure -q ${CONFIGURE_FLAGS:-})
	make -s -C "$BUILD_DIR" -j"$(nproc)"
}

case "${1:-}" in
deps) deps ;;
demo) deps; build; make -s -C "$BUILD_DIR" demo ;;
check) deps; build; make -s -C "$BUILD_DIR" -j"$(nproc)" check ;;
*) echo "usage: $0 demo|check|deps" >&2; exit 64 ;;
esac
