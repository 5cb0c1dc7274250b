#!/bin/sh
# Prints a C header that embeds FILE as `static const unsigned char NAME[]`
# (a NUL byte appended, so text files are also C strings) and
# `static const size_t NAME_size` (the file's size, without that NUL).
# Usage: embed-bytes.sh NAME FILE
set -e
name=$1; file=$2
size=$(wc -c < "$file")
echo "static const unsigned char ${name}[] = {"
od -An -v -tu1 "$file" | sed 's/^ *//; s/ *$//; s/  */,/g; /^$/d; s/$/,/'
echo "0};"
echo "static const size_t ${name}_size = ${size};"
