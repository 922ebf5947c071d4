#!/usr/bin/env bash
# Build Fuzz/<NAME>Fuzz.swift with libFuzzer (+ AddressSanitizer) together with the pure Swift modules it imports,
# then fuzz it for SECONDS. Exits non-zero on a crash, a sanitizer report, a hang (per-input timeout) or a build error.
#
#   scripts/fuzz.sh NAME SECONDS [extra libFuzzer flags…]
#
# Modules are Sources/<Module>/*.swift, found by following `import` lines from the harness; each is compiled once into
# a static library under .build/fuzz/modules. Only Swift targets are supported (C targets are not built here).
# Optional inputs: Fuzz/<NAME>Corpus/ (seed inputs, read-only) and Fuzz/<NAME>.dict (libFuzzer dictionary).
# Environment: FUZZ_TIMEOUT (seconds per input before it counts as a hang, default 5), FUZZ_SANITIZERS (default
# "fuzzer,address"), FUZZ_DETECT_LEAKS (default 0: Swift's lazily initialised globals, e.g. a `static let` table built
# on the first input, are reported as leaks by LeakSanitizer). One process, one core.
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 NAME SECONDS [libFuzzer flags…]" >&2
    exit 2
fi
name=$1
seconds=$2
shift 2

root=$(cd "$(dirname "$0")/.." && pwd)
harness="$root/Fuzz/${name}Fuzz.swift"
[[ -f $harness ]] || { echo "fuzz.sh: no harness $harness" >&2; exit 2; }

scratch="$root/.build/fuzz"
modules_dir="$scratch/modules"
work="$scratch/$name"
mkdir -p "$modules_dir" "$work/corpus" "$work/artifacts"
sanitizers=${FUZZ_SANITIZERS:-fuzzer,address}
swift_flags=(-O -g -parse-as-library -swift-version 6 -sanitize="$sanitizers")

# Local modules imported by the given Swift files (those with a folder under Sources/).
imports_of() {
    sed -n 's/^[[:space:]]*\(@testable[[:space:]]\+\)\?import[[:space:]]\+\([A-Za-z_][A-Za-z0-9_]*\).*/\2/p' "$@" \
        | sort -u | while read -r module; do
            if [[ -d "$root/Sources/$module" ]]; then echo "$module"; fi
        done
}

# Depth-first build so a module's dependencies exist before it; `built` guards against rebuilding.
declare -A built=()
link_order=()
build_module() {
    local module=$1
    if [[ -n ${built[$module]:-} ]]; then return 0; fi
    built[$module]=building
    local sources
    mapfile -t sources < <(find "$root/Sources/$module" -name '*.swift' | sort)
    if [[ ${#sources[@]} -eq 0 ]]; then
        echo "fuzz.sh: $module has no Swift sources (C targets are not supported)" >&2
        exit 2
    fi
    local dependency
    for dependency in $(imports_of "${sources[@]}"); do
        [[ $dependency == "$module" ]] || build_module "$dependency"
    done
    local library="$modules_dir/lib$module.a"
    # Rebuild only when a source is newer than the library (dependencies rebuilt first force it via their .swiftmodule).
    local stale=0
    [[ -f $library ]] || stale=1
    if [[ $stale -eq 0 ]]; then
        if [[ -n $(find "$root/Sources/$module" -name '*.swift' -newer "$library") ]]; then stale=1; fi
        for dependency in $(imports_of "${sources[@]}"); do
            if [[ $dependency != "$module" && "$modules_dir/$dependency.swiftmodule" -nt $library ]]; then stale=1; fi
        done
    fi
    if [[ $stale -eq 1 ]]; then
        echo "fuzz.sh: building module $module" >&2
        swiftc "${swift_flags[@]}" -module-name "$module" -emit-library -static -emit-module \
            -emit-module-path "$modules_dir/$module.swiftmodule" -I "$modules_dir" \
            -o "$library" "${sources[@]}"
    fi
    built[$module]=done
    link_order=("$module" "${link_order[@]}")
}

for module in $(imports_of "$harness"); do
    build_module "$module"
done

link_flags=()
for module in "${link_order[@]}"; do
    link_flags+=("$modules_dir/lib$module.a")
done
echo "fuzz.sh: building $name harness (modules: ${link_order[*]:-none})" >&2
# Fuzz/Support/<Module>+<What>.swift holds what the harnesses of one module share: compiled into each that imports it.
support=()
for module in $(imports_of "$harness"); do
    for file in "$root"/Fuzz/Support/"$module"+*.swift; do [[ -f $file ]] && support+=("$file"); done
done
swiftc "${swift_flags[@]}" -module-name "${name}Fuzz" -I "$modules_dir" "$harness" "${support[@]}" "${link_flags[@]}" \
    -o "$work/${name}Fuzz"

corpora=("$work/corpus")
if [[ -d "$root/Fuzz/${name}Corpus" ]]; then corpora+=("$root/Fuzz/${name}Corpus"); fi
detect_leaks=${FUZZ_DETECT_LEAKS:-0}
export ASAN_OPTIONS="detect_leaks=$detect_leaks${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
fuzz_flags=(-max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-5}" -rss_limit_mb=2048 -detect_leaks="$detect_leaks"
    -artifact_prefix="$work/artifacts/" -print_final_stats=1)
if [[ -f "$root/Fuzz/${name}.dict" ]]; then fuzz_flags+=(-dict="$root/Fuzz/${name}.dict"); fi

echo "fuzz.sh: fuzzing $name for ${seconds}s; crashes and hangs go to $work/artifacts/" >&2
exec "$work/${name}Fuzz" "${fuzz_flags[@]}" "$@" "${corpora[@]}"
