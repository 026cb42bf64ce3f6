# shellcheck shell=bash
# code_env_table SOURCE_ROOT: prints one line per environment variable the C++ code reads:
#   PROCESS <TAB> NAME <TAB> TYPE <TAB> DEFAULT <TAB> MIN <TAB> MAX
# PROCESS is gateway, messages or presence (by folder; services/common counts for all three), TYPE is
# String, Int, Bool or getenv, DEFAULT is the fallback in code when it is a literal or a config struct
# member with a literal initialiser ("?" when it is computed), MIN/MAX bound Int ("" otherwise).
# It reads calls of the form `X.String("NAME", fallback)`, `X.Int("NAME", fallback, min, max)`,
# `X.Bool("NAME", fallback)` (EnvReader) and `getenv("NAME")`, also when they span lines.

# c_eval EXPR: a literal C++ initialiser as a plain value, or "?".
c_eval() {
  local e=$1
  e="${e#"${e%%[![:space:]]*}"}"
  e="${e%"${e##*[![:space:]]}"}"
  case "$e" in
    \"*\") e=${e#\"}; printf '%s' "${e%\"}"; return ;;
    true) printf 1; return ;;
    false) printf 0; return ;;
  esac
  # Integer arithmetic such as 64 * 1024 or 1LL << 32.
  e=$(sed -E 's/([0-9])(ULL|LL|UL|L|U)\b/\1/g' <<<"$e")
  if [[ "$e" =~ ^[0-9\ \*\+\<\(\)-]+$ ]] && v=$((e)) 2>/dev/null; then printf '%s' "$v"; return; fi
  printf '?'
}

# member_default DIR MEMBER: the initialiser of `MEMBER = ...;` in DIR's headers, evaluated.
member_default() {
  local init
  init=$(grep -hE "^[[:space:]]*[A-Za-z_:<>0-9]+[[:space:]]+$2[[:space:]]*=[[:space:]]*[^;]*;" "$1"/*.h 2>/dev/null |
    sed -n 1p | sed -E "s/^[^=]*=[[:space:]]*//; s/;.*$//")
  if [[ -z "$init" ]]; then printf '?'; else c_eval "$init"; fi
}

# split_args TEXT: prints the top-level comma-separated arguments, one a line.
split_args() {
  awk -v s="$1" 'BEGIN {
    depth = 0; q = 0; cur = ""
    for (i = 1; i <= length(s); i++) {
      ch = substr(s, i, 1)
      if (ch == "\"" && substr(s, i - 1, 1) != "\\") q = !q
      if (!q && (ch == "(" || ch == "{")) depth++
      if (!q && (ch == ")" || ch == "}")) depth--
      if (!q && depth == 0 && ch == ",") { print cur; cur = ""; continue }
      cur = cur ch
    }
    print cur
  }'
}

code_env_table() {
  local root=$1 f proc dir call type args name
  while IFS= read -r f; do
    case "$f" in
      */services/gateway/*) proc=gateway ;;
      */services/messages/*) proc=messages ;;
      */services/presence/*) proc=presence ;;
      */services/common/*) proc=all ;;
      *) continue ;;
    esac
    dir=$(dirname "$f")
    # Whole file on one line, comments dropped, so calls split over lines match.
    sed -E 's#//.*$##' "$f" | tr '\n' ' ' |
      { grep -oE '(\b(String|Int|Bool)\([[:space:]]*"[A-Z][A-Z0-9_]*"[[:space:]]*,([^;()]|\([^;()]*(\([^;()]*\))?[^;()]*\))*\)|getenv\([[:space:]]*"[A-Z][A-Z0-9_]*"[[:space:]]*\))' || true; } |
      while IFS= read -r call; do
        type=${call%%(*}
        args=${call#*(}
        args=${args%)}
        local -a a=()
        mapfile -t a < <(split_args "$args")
        name=$(sed -E 's/^[[:space:]]*"([A-Z0-9_]+)".*/\1/' <<<"${a[0]}")
        local def="" min="" max="" fb=""
        if [[ "$type" != getenv ]]; then
          fb=$(sed -E 's/^[[:space:]]+|[[:space:]]+$//g' <<<"${a[1]:-}")
          if [[ "$fb" =~ ^[a-z_]+\.([a-z_0-9]+)$ ]]; then
            def=$(member_default "$dir" "${BASH_REMATCH[1]}")
          else
            def=$(c_eval "$fb")
          fi
        else
          def="?"
        fi
        if [[ "$type" == Int ]]; then
          min=$(c_eval "${a[2]:-}")
          max=$(c_eval "${a[3]:-}")
        fi
        local p
        if [[ "$proc" == all ]]; then
          for p in gateway messages presence; do printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$p" "$name" "$type" "$def" "$min" "$max"; done
        else
          printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$proc" "$name" "$type" "$def" "$min" "$max"
        fi
      done
  done < <(find "$root/services" -type f \( -name '*.cpp' -o -name '*.h' \) | sort) | sort -u
}
