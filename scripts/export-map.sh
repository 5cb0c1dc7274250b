#!/bin/sh
# usage: export-map.sh include/convnet.h > libconvnet.map
# The shared library's version script: the functions declared in the public header are
# exported (version CONVNET_1), everything else in libconvnet stays local.
set -e
echo "CONVNET_1 {"
echo "  global:"
sed -n 's/.*[^a-z_0-9]\(cn_[a-z0-9_]*\)(.*/\1/p' "$1" | sort -u | sed 's/.*/    &;/'
echo "  local: *;"
echo "};"
