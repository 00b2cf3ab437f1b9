#!/usr/bin/env bash
# Vendors GraphiQL and React (their UMD builds) into server/static/graphiql/vendor, so the
# GraphiQL page loads nothing from outside the server (see server/graphiql.py).
#
# Each package is fetched at an exact version with npm (from the configured registry), its
# tarball's sha512 is checked against the integrity value pinned below AND against the one the
# registry publishes, and only the files the page needs (plus licences) are kept. VERSIONS and
# README.md are written next to them. Re-run after changing a version (and its pinned integrity:
# `npm view NAME@VERSION dist.integrity`); the result is committed.
#
# GraphiQL 4.1.x is the last line with a self-contained UMD build (5.x is ESM-only, built on
# Monaco, and needs a bundler); React 18.3.x is the last React with UMD builds.
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=server/static/graphiql/vendor

# name version integrity files-to-keep (paths inside the package)
PACKAGES=(
  "react 18.3.1 sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ== umd/react.production.min.js LICENSE"
  "react-dom 18.3.1 sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw== umd/react-dom.production.min.js LICENSE"
  "graphiql 4.1.2 sha512-rNlzQIAzm6i2KBXmVQWBgLvt0TloxFVB2d18bukvdsvjEuFDHsKx5IVOomL1W1o5WW+tE54+ioHb2AEKzO2cUg== graphiql.min.js graphiql.min.css LICENSE"
)

for tool in npm tar openssl base64 sha256sum; do
  command -v "$tool" >/dev/null || { echo "vendor-graphiql: $tool is required" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
staged="$work/vendor"
mkdir -p "$staged"
versions="$staged/VERSIONS"
echo "# package version npm-integrity (written by scripts/vendor-graphiql.sh)" >"$versions"

for entry in "${PACKAGES[@]}"; do
  read -r name version pinned files <<<"$entry"
  spec="$name@$version"
  published="$(npm view "$spec" dist.integrity)"
  if [[ "$published" != "$pinned" ]]; then
    echo "vendor-graphiql: $spec: the registry publishes $published, pinned is $pinned" >&2
    exit 1
  fi
  tarball="$work/$(npm pack "$spec" --pack-destination "$work" --silent | tail -n 1)"
  actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w 0)"
  if [[ "$actual" != "$pinned" ]]; then
    echo "vendor-graphiql: $spec: downloaded tarball is $actual, expected $pinned" >&2
    exit 1
  fi
  unpacked="$work/$name"
  mkdir -p "$unpacked" "$staged/$name"
  tar -xzf "$tarball" -C "$unpacked"
  for file in $files; do
    cp "$unpacked/package/$file" "$staged/$name/$(basename "$file")"
  done
  echo "$name $version $pinned" >>"$versions"
  echo "vendored $spec ($files)"
done

{
  echo
  echo "# sha256 of the vendored files"
  (cd "$staged" && find . -type f ! -name VERSIONS ! -name README.md | sort | xargs sha256sum)
} >>"$versions"

cat >"$staged/README.md" <<'EOF'
# Vendored GraphiQL

Written by `scripts/vendor-graphiql.sh`; do not edit by hand. The GraphiQL page
(`server/graphiql.py`, `../index.js`, `../page.css`) loads only these files, served by the
app under `/graphiql/static/`, so it works offline and under a strict
Content-Security-Policy (this origin only; see server/graphiql.py).

`VERSIONS` lists each npm package, its exact version and the sha512 integrity value its
tarball was checked against, then the sha256 of every file kept here. To upgrade, change the
version and pinned integrity in the script (`npm view NAME@VERSION dist.integrity`) and re-run
it. Each package's licence is kept beside its files.
EOF

rm -rf "$DEST"
mkdir -p "$(dirname "$DEST")"
cp -r "$staged" "$DEST"
du -sh "$DEST"
