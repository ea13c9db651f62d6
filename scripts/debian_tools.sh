# Sourced by scripts/test: the tools the tests drive, if missing: chromium and chromedriver
# (the Web UI test), poppler-utils (pdftotext reads the PDF text layer back) and Node.js with
# npm (pdf.js, from the npm registry at the version tools/pdfjs/package-lock.json pins, reads it
# too), all from Debian.
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v pdftotext >/dev/null || missing+=(poppler-utils)
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing ${missing[*]} (Debian) for the tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null && command -v apt-get >/dev/null; then
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "the tests need ${missing[*]} (Debian: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi
if [ ! -d tools/pdfjs/node_modules/pdfjs-dist ]; then
  npm ci --prefix tools/pdfjs --omit=optional --no-audit --no-fund --loglevel=error >/dev/null
fi
