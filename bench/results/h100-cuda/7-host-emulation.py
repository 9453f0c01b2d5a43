# Turns the chunked WKV7 kernel text (backends/cuda/kernels_wkv7_chunked.cpp) into host C++ for
# 7-host-emulation.cpp: cp.async becomes a plain copy, shared memory a per-block buffer, the flag
# loads and stores std::atomic_ref. Run: /usr/bin/python3 7-host-emulation.py (writes kernels.inc
# in the current folder), then g++ -std=c++20 -O1 -pthread -I. path/to/7-host-emulation.cpp -o emu && ./emu [fused].
import os, re
def grab(path, name):
    s=open(path).read(); i=s.index(name); j=s.index('R"CUDA(', i)+len('R"CUDA('); k=s.index(')CUDA"', j); return s[j:k]
src=grab(os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../backends/cuda/kernels_wkv7_chunked.cpp'),'kWkv7ChunkedSource =')
src=re.sub(r'__device__ __forceinline__ void wkv7c_copy16\(float\* shared, const float\* global, int bytes\) \{.*?\n\}\n',
 'inline void wkv7c_copy16(float* shared, const float* global, int bytes) { for (int i = 0; i < 4; ++i) shared[i] = i * 4 < bytes ? global[i] : 0.0f; }\n', src, flags=re.S)
src=re.sub(r'(__device__ __forceinline__ int wkv7c_peek\(const int\* ready, int index\) \{).*?\n\}\n',
 r'\1 return std::atomic_ref<int>(const_cast<int&>(ready[index])).load(); }\n', src, flags=re.S)
src=re.sub(r'asm volatile\("st\.relaxed\.gpu\.global\.b32 \[%0\], %1;" ::"l"\(ready \+ index\), "r"\(1\) : "memory"\);',
 'std::atomic_ref<int>(ready[index]).store(1);', src)
src=src.replace('asm volatile("cp.async.commit_group;" ::: "memory");','(void)0;').replace('asm volatile("cp.async.wait_group 1;" ::: "memory");','(void)0;')
src=re.sub(r'__shared__ __align__\(16\) (.*?) sh;', r'auto& sh = emu_shared<\1>();', src)
src=src.replace('__device__ __forceinline__','inline').replace('__align__(16)','')
assert 'asm' not in src, [l for l in src.splitlines() if 'asm' in l]
open('kernels.inc','w').write(src)
