#!/usr/bin/env bash
# Usage: Tests/Kernels/build-static-libcurl.sh DIR
#
# Builds a minimal static libcurl (HTTP, FTP and file; zlib; no TLS, GSS-API, LDAP, IDN, PSL, SSH, RTMP or HTTP/2)
# from Debian's own curl source package, with Debian's patches, into DIR (DIR/lib/libcurl.a) and prints DIR.
#
# Why: the MCP SDK (modelcontextprotocol/swift-sdk 0.12.x) has a single library product, MCP, whose OAuth client and
# HTTPClientTransport import FoundationNetworking on Linux, so every binary that uses the SDK's server links
# FoundationNetworking, and with it libcurl. Fathom itself no longer uses FoundationNetworking (its HTTP clients are
# FathomHTTPClient, on SwiftNIO), so this libcurl is never called; it only satisfies the link. Debian's own
# libcurl.a cannot be linked statically: it needs libgssapi_krb5 (libkrb5-dev ships no .a) and, through librtmp and
# libldap, GnuTLS, which needs libp11-kit (libp11-kit-dev ships no .a).
#
# The source comes from the Debian archive through apt-get source with a private apt configuration (its own
# deb-src list, package lists and cache under DIR.work), so the machine's apt state is untouched. A DIR that already
# holds libcurl.a is reused.
# Needs (Debian): dpkg-dev (dpkg-source), gcc, make, zlib1g-dev.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: $0 DIR" >&2; exit 2; }
out=$(realpath -m "$1")
if [[ -e $out/lib/libcurl.a ]]; then
	echo "$out"
	exit 0
fi
for tool in dpkg-source:dpkg-dev cc:gcc make:make; do
	command -v "${tool%%:*}" >/dev/null || { echo "${tool%%:*} not found: apt-get install -y ${tool#*:}" >&2; exit 2; }
done
. /etc/os-release
codename=${VERSION_CODENAME:?no VERSION_CODENAME in /etc/os-release}
work=$out.work
rm -rf "$work"
mkdir -p "$work/sources.d" "$work/lists/partial" "$work/cache/archives/partial" "$work/src"
# The release and its security suite: apt-get source takes the newest version either carries.
cat >"$work/sources.d/curl-source.sources" <<-EOF
	Types: deb-src
	URIs: http://deb.debian.org/debian
	Suites: $codename $codename-updates
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

	Types: deb-src
	URIs: http://deb.debian.org/debian-security
	Suites: $codename-security
	Components: main
	Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_private=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/sources.d"
	-o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache" -o Debug::NoLocking=1
	-o APT::Sandbox::User=root)
apt-get "${apt_private[@]}" -qq update >&2
(cd "$work/src" && apt-get "${apt_private[@]}" -qq source --download-only curl) >&2
dsc=$(compgen -G "$work/src/curl_*.dsc" | sort -V | tail -n 1)
[[ -n $dsc ]] || { echo "apt-get source curl gave no .dsc in $work/src" >&2; exit 1; }
# apt-get checked the files against the signed Sources index; dpkg-source cannot check the .dsc's own signature
# without debian-keyring, and says so in its log.
dpkg-source -x "$dsc" "$work/src/curl" >"$work/dpkg-source.log" 2>&1 || { tail -n 30 "$work/dpkg-source.log" >&2; exit 1; }
cd "$work/src/curl"
./configure --prefix="$out" --disable-shared --enable-static --with-pic \
	--without-ssl --with-zlib --without-brotli --without-zstd --without-libpsl --without-libidn2 --without-nghttp2 \
	--without-libssh2 --without-librtmp --without-gssapi --disable-ldap --disable-ldaps --disable-rtsp --disable-dict \
	--disable-telnet --disable-tftp --disable-pop3 --disable-imap --disable-smb --disable-smtp --disable-gopher \
	--disable-mqtt --disable-ntlm --disable-alt-svc --disable-manual --disable-docs --enable-ipv6 >"$work/configure.log" 2>&1 ||
	{ tail -n 30 "$work/configure.log" >&2; exit 1; }
make -j"$(nproc)" -C lib >"$work/make.log" 2>&1 || { tail -n 30 "$work/make.log" >&2; exit 1; }
make -C lib install >/dev/null
make -C include install >/dev/null
rm -rf "$work"
echo "$out"
