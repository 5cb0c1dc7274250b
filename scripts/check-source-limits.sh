#!/bin/sh
# The size limits of the project's rules (docs: no file over 1,000 lines, no function over
# 150), checked on the C sources and headers under src/ and tools/ (or the files given).
# Run by `make check` as one of its test programs: prints each breach as a FAIL line and ends
# with "TESTS passed failed" (one check a file), as the C tests do (tests/run.sh adds them up).
#
# Functions are found with a brace-depth scan of the text with comments, string and character
# literals and preprocessor lines taken out: a '{' at depth 0 opens a function body when the
# text before it (since the last ';', '}' or preprocessor line) has a '(' and no '=' (which
# would make it an initializer) and does not begin with typedef. A function's length runs
# from the first line of that text (its signature) to its closing '}'.
MAX_FILE_LINES=${MAX_FILE_LINES:-1000}
MAX_FUNCTION_LINES=${MAX_FUNCTION_LINES:-150}
if [ $# -eq 0 ]; then
    set -- $(find src tools -name '*.[ch]' | sort)
fi
awk -v max_file="$MAX_FILE_LINES" -v max_fn="$MAX_FUNCTION_LINES" '
    function fail(msg) { print "  FAIL check-source-limits: " msg; bad = 1 }
    function finish_file() {
        if (file == "") return
        if (lines > max_file) fail(file ": " lines " lines; the limit is " max_file " a file")
        if (bad) failed++; else passed++
    }
    # The name a signature declares: the identifier before its first "(" (skipping attributes),
    # or the name inside a templated one, WG(name)(...).
    function signature_name(text,    s, i, name) {
        s = text
        gsub(/__attribute__ *\(\([^)]*\)\)/, "", s)
        if (match(s, /[A-Za-z_][A-Za-z_0-9]*\([A-Za-z_][A-Za-z_0-9]*\)[ \t]*\(/)) {
            s = substr(s, RSTART, RLENGTH)
            sub(/^[A-Za-z_0-9]*\(/, "", s)
            sub(/\).*/, "", s)
            return s
        }
        i = index(s, "(")
        if (i == 0) return "?"
        s = substr(s, 1, i - 1)
        sub(/[ \t]+$/, "", s)
        if (match(s, /[A-Za-z_][A-Za-z_0-9]*$/)) name = substr(s, RSTART, RLENGTH)
        return name == "" ? "?" : name
    }
    FNR == 1 {
        finish_file()
        file = FILENAME; lines = 0; bad = 0
        depth = 0; in_comment = 0; continued = 0; header = ""; header_line = 0
    }
    {
        lines++
        line = $0
        # a preprocessor line (and its continuations) ends any signature text before it
        if (continued || (!in_comment && line ~ /^[ \t]*#/)) {
            continued = line ~ /\\$/
            if (depth == 0) { header = ""; header_line = 0 }
            next
        }
        n = length(line)
        for (i = 1; i <= n; i++) {
            ch = substr(line, i, 1)
            if (in_comment) {
                if (ch == "*" && substr(line, i + 1, 1) == "/") { in_comment = 0; i++ }
                continue
            }
            two = substr(line, i, 2)
            if (two == "/*") { in_comment = 1; i++; continue }
            if (two == "//") break
            if (ch == "\"" || ch == "\047") {          # a string or character literal
                for (i++; i <= n && substr(line, i, 1) != ch; i++)
                    if (substr(line, i, 1) == "\\") i++
                if (depth == 0) header = header "x"
                continue
            }
            if (ch == "{") {
                if (depth == 0) {
                    is_function = header ~ /\(/ && header !~ /=/ && header !~ /^[ \t]*typedef[ \t]/
                    fn_start = header_line ? header_line : FNR
                    fn_name = is_function ? signature_name(header) : ""
                }
                depth++
                continue
            }
            if (ch == "}") {
                if (depth > 0) depth--
                if (depth == 0) {
                    if (fn_name != "" && FNR - fn_start + 1 > max_fn)
                        fail(file ":" fn_start ": function " fn_name " is " (FNR - fn_start + 1) " lines; the limit is " max_fn)
                    fn_name = ""; header = ""; header_line = 0
                }
                continue
            }
            if (depth > 0) continue
            if (ch == ";") { header = ""; header_line = 0; continue }
            if (ch !~ /[ \t]/ && header_line == 0) header_line = FNR
            header = header ch
        }
        if (depth == 0 && header != "") header = header " "
    }
    END {
        finish_file()
        print "TESTS " passed + 0 " " failed + 0
        exit failed > 0
    }
' "$@"
