/*
 * Minimal bcryptprimitives.dll for Wine 8, which lacks ProcessPrng.
 *
 * Rust's standard library (1.78+) imports bcryptprimitives.dll!ProcessPrng
 * for its random numbers (HashMap keys). Under Wine 8 the import cannot be
 * resolved and the exe dies before main with STATUS_DLL_NOT_FOUND
 * (c0000135). This shim forwards to RtlGenRandom (advapi32's
 * SystemFunction036), which Wine implements.
 *
 * Build: x86_64-w64-mingw32-gcc -shared -O2 -o bcryptprimitives.dll \
 *            bcryptprimitives.c bcryptprimitives.def -ladvapi32
 */
#include <windows.h>

/* advapi32!SystemFunction036 is RtlGenRandom. */
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}

BOOL WINAPI DllMain(HINSTANCE inst, DWORD reason, LPVOID reserved)
{
    (void)inst;
    (void)reason;
    (void)reserved;
    return TRUE;
}
