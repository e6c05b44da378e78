#!/usr/bin/env bash
# Installs the offline speech synthesisers and real-speech packages the corpus tests use, and the headless browser
# the web viewer is tested in (Debian/Ubuntu).
# Without them those tests skip; with root and apt-get they are installed once, then this is a no-op.
set -u
packages=(festival festvox-us-slt-hts festvox-kallpc16k festlex-cmu flite espeak-ng libespeak-ng1 sox chromium chromium-driver
          pocketsphinx-testdata asterisk-core-sounds-en-wav)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing speech tools: ${missing[*]}" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || echo "warning: could not install ${missing[*]}; the tests that need them will skip" >&2
else
  echo "note: ${missing[*]} not installed (needs root + apt-get); the tests that need them will skip" >&2
fi
exit 0
