#!/usr/bin/env bash
# Builds PgBouncer 1.24 from Debian 13's source package into /var/tmp/pgbouncer-1.24.1, for
# bench/instances.sh --pgbouncer in transaction pooling mode on Debian 12, whose own
# pgbouncer (1.18) predates max_prepared_statements (README "PostgreSQL behind PgBouncer").
# Only deb.debian.org is contacted; the tarballs are checked against the sha256 sums of
# Debian's Sources index (trixie, pgbouncer 1.24.1-1+deb13u2). Prints the binary's path.
# Usage: PGBOUNCER=$(bench/pgbouncer-build.sh) bench/instances.sh --pgbouncer
set -euo pipefail
prefix=/var/tmp/pgbouncer-1.24.1
if [ -x "$prefix/bin/pgbouncer" ]; then echo "$prefix/bin/pgbouncer"; exit 0; fi
apt-get install -y -q libevent-dev libc-ares-dev libssl-dev pkgconf >&2
pool=http://deb.debian.org/debian/pool/main/p/pgbouncer
work=$(mktemp -d /tmp/pgbouncer-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"
curl -fsS -O "$pool/pgbouncer_1.24.1.orig.tar.gz" -O "$pool/pgbouncer_1.24.1-1+deb13u2.debian.tar.xz"
sha256sum -c --quiet >&2 <<SUMS
da72a3aba13072876d055a3e58dd4aba4a5de4ed6148e73033185245598fd3e0  pgbouncer_1.24.1.orig.tar.gz
2325bcaa2e71919d399b9e5aef5b94ff988fc1f1d296908c3937b682b7be5cbb  pgbouncer_1.24.1-1+deb13u2.debian.tar.xz
SUMS
tar xzf pgbouncer_1.24.1.orig.tar.gz
cd pgbouncer-1.24.1
tar xJf ../pgbouncer_1.24.1-1+deb13u2.debian.tar.xz
# Debian's security fixes (quilt series), applied as the package build would.
if [ -f debian/patches/series ]; then
  while read -r patch; do
    case "$patch" in ''|'#'*) continue ;; esac
    patch -p1 -s < "debian/patches/$patch" >&2
  done < debian/patches/series
fi
./configure -q --prefix="$prefix" --with-cares --without-systemd >&2
make -s -j2 >&2
make -s install >&2
echo "$prefix/bin/pgbouncer"
