# Flattens block-style YAML (what `kubectl kustomize` and `docker-compose config` print, and our own
# manifests) into one line per scalar: DOC <TAB> PATH <TAB> VALUE, with PATH like
# spec.template.spec.containers.0.env.1.name and DOC counting `---` documents from 0.
# Handles both list styles (`key:\n- item` and `key:\n  - item`), quoted scalars, flow sequences of
# scalars (expanded to PATH.0, PATH.1, ...), `{}`/`[]`, and block scalars (`|`, `>`: emitted as
# "<block>", their lines skipped). Not handled (not used in this repository): anchors and merge keys,
# flow mappings with content, multi-line plain scalars.
function unquote(v) {
  if (v ~ /^".*"$/ || v ~ /^'.*'$/) return substr(v, 2, length(v) - 2)
  return v
}
function strip_comment(v) {
  if (v ~ /^["']/) return v
  sub(/[ \t]+#.*$/, "", v)
  return v
}
function path(   p, i) {
  p = ""
  for (i = 1; i <= top; i++) p = (p == "" ? seg[i] : p "." seg[i])
  return p
}
function emit(p, v,   n, parts, i, inner) {
  if (v ~ /^\[.*\]$/ && v != "[]") {
    inner = substr(v, 2, length(v) - 2)
    n = split(inner, parts, /[ \t]*,[ \t]*/)
    for (i = 1; i <= n; i++) {
      gsub(/^[ \t]+|[ \t]+$/, "", parts[i])
      printf "%d\t%s.%d\t%s\n", doc, p, i - 1, unquote(parts[i])
    }
    return
  }
  printf "%d\t%s\t%s\n", doc, p, unquote(v)
}
function key_line(c, text,   k, v, pos, p) {
  while (top > 0 && ind[top] >= c) top--
  if (text ~ /^"/) {
    pos = index(substr(text, 2), "\"")
    k = substr(text, 2, pos - 1)
    v = substr(text, pos + 2)
    sub(/^:[ \t]*/, "", v)
  } else {
    pos = match(text, /:([ \t]|$)/)
    if (pos == 0) { emit(path(), strip_comment(text)); return }
    k = substr(text, 1, pos - 1)
    v = substr(text, pos + 1)
    sub(/^[ \t]+/, "", v)
  }
  v = strip_comment(v)
  p = path()
  p = (p == "" ? k : p "." k)
  if (v == "") {
    top++; ind[top] = c; kind[top] = "k"; seg[top] = k
  } else if (v ~ /^[|>][-+0-9]*$/) {
    printf "%d\t%s\t<block>\n", doc, p
    skip = c
  } else {
    emit(p, v)
  }
}
BEGIN { doc = 0; top = 0; skip = -1 }
{
  line = $0
  sub(/\r$/, "", line)
  if (line ~ /^---/) { doc++; top = 0; skip = -1; delete cnt; next }
  if (line ~ /^[ \t]*$/) next
  indent = match(line, /[^ ]/) - 1
  if (skip >= 0) {
    if (indent > skip) next
    skip = -1
  }
  content = substr(line, indent + 1)
  if (content ~ /^#/) next
  if (content ~ /^-( |$)/) {
    while (top > 0 && (ind[top] > indent || (kind[top] == "i" && ind[top] == indent))) top--
    parent = doc SUBSEP path()
    idx = (parent in cnt) ? cnt[parent] : 0
    cnt[parent] = idx + 1
    top++; ind[top] = indent; kind[top] = "i"; seg[top] = idx
    rest = substr(content, 3)
    sub(/^[ \t]+/, "", rest)
    if (rest == "") next
    extra = index(content, rest) - 1
    if (rest ~ /^"[^"]*"[ \t]*:([ \t]|$)/ || rest ~ /^[^"'\[{][^:]*:([ \t]|$)/) key_line(indent + extra, rest)
    else emit(path(), strip_comment(rest))
    next
  }
  key_line(indent, content)
}
