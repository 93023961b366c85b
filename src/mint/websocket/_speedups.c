/*
 * Optional C accelerator for client-side masking (RFC 6455 section 5.3).
 *
 * Why it exists: masking touches every byte a client sends, and the best
 * pure-Python trick (bytes.translate over four strided lanes, see _mask.py)
 * runs at about 1 GB/s; a uint64 XOR loop runs at memory speed.  The module
 * is optional: _mask.py falls back to the pure-Python functions, which stay
 * the reference, when this file was not compiled or MINT_NO_SPEEDUPS=1.
 *
 * Both functions accept any object exporting the buffer protocol (bytes,
 * bytearray, memoryview, array, mmap, ...), contiguous or not, and mask its
 * raw bytes as bytes(memoryview(data)) would give them.  The input buffer is
 * held (bytearray cannot resize) while the GIL is released for large inputs,
 * so another thread can at worst change bytes being read, never free them.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Above this many bytes, masking runs without the GIL. */
#define RELEASE_GIL_THRESHOLD 65536

/*
 * dst[i] = src[i] ^ key[i % 4] for i < size.  src and dst may be the same
 * buffer.  dst is brought to 8-byte alignment first (rotating the key to
 * match), then 8 bytes are XORed at a time with the key doubled into a
 * uint64; memcpy keeps the loads legal for any src alignment and compiles to
 * plain loads and stores.
 */
static void
xor_with_key(const unsigned char *src, unsigned char *dst, Py_ssize_t size,
             const unsigned char key[4])
{
    Py_ssize_t i = 0;
    size_t head = (size_t)(-(uintptr_t)dst & 15u);
    if ((Py_ssize_t)head > size) {
        head = (size_t)size;
    }
    for (; i < (Py_ssize_t)head; i++) {
        dst[i] = src[i] ^ key[i & 3];
    }
    unsigned char doubled[8];
    for (int j = 0; j < 8; j++) {
        doubled[j] = key[(i + j) & 3];
    }
    uint64_t key64;
    memcpy(&key64, doubled, 8);
#if defined(__SSE2__)
    /* x86-64 always has SSE2: 64 bytes per turn, aligned stores. */
    __m128i key128 = _mm_set1_epi64x((long long)key64);
    for (; i + 64 <= size; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(src + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(src + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(const void *)(src + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(const void *)(src + i + 48));
        _mm_store_si128((__m128i *)(void *)(dst + i), _mm_xor_si128(a, key128));
        _mm_store_si128((__m128i *)(void *)(dst + i + 16), _mm_xor_si128(b, key128));
        _mm_store_si128((__m128i *)(void *)(dst + i + 32), _mm_xor_si128(c, key128));
        _mm_store_si128((__m128i *)(void *)(dst + i + 48), _mm_xor_si128(d, key128));
    }
#endif
    /* Four words per turn: independent loads and stores keep the pipeline full. */
    for (; i + 32 <= size; i += 32) {
        uint64_t words[4];
        memcpy(words, src + i, 32);
        words[0] ^= key64;
        words[1] ^= key64;
        words[2] ^= key64;
        words[3] ^= key64;
        memcpy(dst + i, words, 32);
    }
    for (; i + 8 <= size; i += 8) {
        uint64_t word;
        memcpy(&word, src + i, 8);
        word ^= key64;
        memcpy(dst + i, &word, 8);
    }
    for (; i < size; i++) {
        dst[i] = src[i] ^ key[i & 3];
    }
}

/*
 * Fill `view` with the bytes of `obj`.  A non-contiguous buffer is copied
 * into a fresh contiguous block that *copy receives (free it with
 * PyMem_Free); a contiguous one is used in place and *copy stays NULL.
 * On failure, returns -1 with TypeError (not a buffer) or BufferError set.
 */
static int
get_bytes(PyObject *obj, Py_buffer *view, void **copy, const char *what)
{
    *copy = NULL;
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) == 0) {
        return 0;
    }
    if (!PyErr_ExceptionMatches(PyExc_BufferError)) {
        PyErr_Clear();
        PyErr_Format(PyExc_TypeError, "%s must be a bytes-like object, not %.100s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyErr_Clear();
    if (PyObject_GetBuffer(obj, view, PyBUF_FULL_RO) != 0) {
        return -1;
    }
    void *block = PyMem_Malloc(view->len > 0 ? (size_t)view->len : 1);
    if (block == NULL) {
        PyBuffer_Release(view);
        PyErr_NoMemory();
        return -1;
    }
    if (PyBuffer_ToContiguous(block, view, view->len, 'C') != 0) {
        PyMem_Free(block);
        PyBuffer_Release(view);
        return -1;
    }
    *copy = block;
    return 0;
}

static void
release_bytes(Py_buffer *view, void *copy)
{
    PyMem_Free(copy);
    PyBuffer_Release(view);
}

static const unsigned char *
bytes_of(const Py_buffer *view, const void *copy)
{
    return (const unsigned char *)(copy != NULL ? copy : view->buf);
}

static void
mask_into(const unsigned char *src, unsigned char *dst, Py_ssize_t size,
          const unsigned char key[4])
{
    if (size >= RELEASE_GIL_THRESHOLD) {
        Py_BEGIN_ALLOW_THREADS
        xor_with_key(src, dst, size, key);
        Py_END_ALLOW_THREADS
    }
    else {
        xor_with_key(src, dst, size, key);
    }
}

PyDoc_STRVAR(apply_mask_doc,
"apply_mask(data, mask, /) -> bytes\n"
"\n"
"Return data XORed with the 4-byte mask repeated (RFC 6455 section 5.3).\n"
"data is any bytes-like object; mask is a bytes-like object of length 4.");

static PyObject *
apply_mask(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "apply_mask() takes exactly 2 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    Py_buffer key_view;
    void *key_copy;
    if (get_bytes(args[1], &key_view, &key_copy, "mask") != 0) {
        return NULL;
    }
    if (key_view.len != 4) {
        PyErr_Format(PyExc_ValueError, "mask must be 4 bytes long, not %zd", key_view.len);
        release_bytes(&key_view, key_copy);
        return NULL;
    }
    unsigned char key[4];
    memcpy(key, bytes_of(&key_view, key_copy), 4);
    release_bytes(&key_view, key_copy);

    Py_buffer view;
    void *copy;
    if (get_bytes(args[0], &view, &copy, "data") != 0) {
        return NULL;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, view.len);
    if (result != NULL) {
        mask_into(bytes_of(&view, copy), (unsigned char *)PyBytes_AS_STRING(result), view.len,
                  key);
    }
    release_bytes(&view, copy);
    return result;
}

PyDoc_STRVAR(masked_frame_doc,
"masked_frame(first_byte, key, payload, /) -> bytes\n"
"\n"
"A whole client frame in one allocation: first_byte (FIN, RSV and opcode,\n"
"0-255), the MASK bit and the shortest length form, the key's 4 bytes, then\n"
"the payload masked.  key is an int 0 <= key < 2**32 whose little-endian\n"
"bytes are the masking key as it goes on the wire.");

static PyObject *
masked_frame(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "masked_frame() takes exactly 3 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    if (!PyLong_Check(args[0]) || !PyLong_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "masked_frame() first_byte and key must be int");
        return NULL;
    }
    int overflow;
    long first_byte = PyLong_AsLongAndOverflow(args[0], &overflow);
    if (first_byte == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (overflow || first_byte < 0 || first_byte > 255) {
        PyErr_SetString(PyExc_ValueError, "first_byte must be between 0 and 255");
        return NULL;
    }
    unsigned long long key_value = PyLong_AsUnsignedLongLong(args[1]);
    if (key_value == (unsigned long long)-1 && PyErr_Occurred()) {
        if (PyErr_ExceptionMatches(PyExc_OverflowError)) {
            PyErr_SetString(PyExc_ValueError, "key must be between 0 and 2**32 - 1");
        }
        return NULL;
    }
    if (key_value > 0xFFFFFFFFull) {
        PyErr_SetString(PyExc_ValueError, "key must be between 0 and 2**32 - 1");
        return NULL;
    }

    Py_buffer view;
    void *copy;
    if (get_bytes(args[2], &view, &copy, "payload") != 0) {
        return NULL;
    }
    Py_ssize_t size = view.len;
    unsigned char header[14];
    Py_ssize_t header_size;
    header[0] = (unsigned char)first_byte;
    if (size < 126) {
        header[1] = (unsigned char)(0x80 | size);
        header_size = 2;
    }
    else if (size < 65536) {
        header[1] = 0x80 | 126;
        header[2] = (unsigned char)(size >> 8);
        header[3] = (unsigned char)size;
        header_size = 4;
    }
    else {
        uint64_t length = (uint64_t)size;
        header[1] = 0x80 | 127;
        for (int j = 0; j < 8; j++) {
            header[2 + j] = (unsigned char)(length >> (56 - 8 * j));
        }
        header_size = 10;
    }
    unsigned char *key = header + header_size;
    for (int j = 0; j < 4; j++) {
        key[j] = (unsigned char)(key_value >> (8 * j));
    }
    header_size += 4;

    PyObject *result = NULL;
    if (size > PY_SSIZE_T_MAX - header_size) {
        PyErr_NoMemory();
    }
    else {
        result = PyBytes_FromStringAndSize(NULL, header_size + size);
    }
    if (result != NULL) {
        unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
        memcpy(out, header, (size_t)header_size);
        mask_into(bytes_of(&view, copy), out + header_size, size, key);
    }
    release_bytes(&view, copy);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {"masked_frame", (PyCFunction)(void (*)(void))masked_frame, METH_FASTCALL,
     masked_frame_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mint.websocket._speedups",
    .m_doc = "C versions of mint.websocket._mask's hot loops (optional).",
    .m_size = 0,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
