#!/usr/bin/env bash
# Sets up a CUDA 13.0 toolkit from NVIDIA's PyPI wheels, so that the `cuda`
# feature compiles on a machine without a GPU, a driver or a system CUDA
# install (CI, laptops). Source it; it exports CUDA_ROOT/CUDA_HOME/CUDA_PATH,
# PATH, CUDA_COMPUTE_CAP and CUDARC_CUDA_VERSION for cargo:
#
#   source scripts/cuda-toolkit.sh && cargo build --release --workspace --features cuda
#
# The toolkit lands in $SCORESTREAM_CUDA_DIR (default
# ~/.cache/scorestream-cuda) and is reused by later runs. A build made this
# way links against a stub `libcuda.so` (soname libcuda.so.1): at run time the
# real driver of the GPU machine is loaded instead. Set CUDA_COMPUTE_CAP to
# your GPU's (e.g. 80 for A100, 89 for L4) before building for it.

_cuda_dir="${SCORESTREAM_CUDA_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/scorestream-cuda}"
_cuda_root="$_cuda_dir/nvidia/cu13"
_cuda_wheels=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-nvrtc==13.0.88
  nvidia-curand==10.4.0.35
  nvidia-cublas==13.1.0.3
)
_cuda_stamp="$_cuda_dir/.installed-$(printf '%s\n' "${_cuda_wheels[@]}" | md5sum | cut -c1-12)"

if [ ! -f "$_cuda_stamp" ]; then
  echo "installing the CUDA 13.0 toolkit wheels into $_cuda_dir" >&2
  rm -rf "$_cuda_dir" && mkdir -p "$_cuda_dir"
  python3 -m pip install --quiet --no-deps --target "$_cuda_dir" "${_cuda_wheels[@]}" || return 1 2>/dev/null || exit 1

  # The wheels ship only versioned sonames; the linker looks for lib<name>.so.
  for lib in cudart cublas cublasLt curand nvrtc; do
    real="$(ls "$_cuda_root"/lib/lib$lib.so.* 2>/dev/null | sort | head -n1)"
    [ -n "$real" ] || { echo "lib$lib.so.* missing from the wheels" >&2; return 1 2>/dev/null || exit 1; }
    ln -sf "$(basename "$real")" "$_cuda_root/lib/lib$lib.so"
  done

  # candle links cudarc with `dynamic-linking`, so the driver library must be
  # present at link time. Build a stub holding every cu* entry point that
  # cuda.h declares (after its _v2/_v3 renaming macros), with the driver's
  # soname so the real libcuda.so.1 is the one loaded at run time.
  mkdir -p "$_cuda_root/lib/stubs"
  gcc -E -P -I "$_cuda_root/include" "$_cuda_root/include/cuda.h" 2>/dev/null \
    | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' (' | sort -u \
    | awk '{ printf "int %s(void) { return 100; }\n", $1 }' > "$_cuda_root/lib/stubs/cuda_stub.c"
  [ "$(wc -l < "$_cuda_root/lib/stubs/cuda_stub.c")" -gt 300 ] \
    || { echo "could not read the driver API from cuda.h" >&2; return 1 2>/dev/null || exit 1; }
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$_cuda_root/lib/stubs/libcuda.so" \
    "$_cuda_root/lib/stubs/cuda_stub.c" || return 1 2>/dev/null || exit 1
  touch "$_cuda_stamp"
fi

export CUDA_ROOT="$_cuda_root" CUDA_HOME="$_cuda_root" CUDA_PATH="$_cuda_root"
export PATH="$_cuda_root/bin:$PATH"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
export CUDARC_CUDA_VERSION=13000
unset _cuda_dir _cuda_root _cuda_wheels _cuda_stamp
