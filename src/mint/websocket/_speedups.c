/*
 * Optional C accelerator for the codec's two hot loops: client-side masking
 * (RFC 6455 section 5.3) and decoding runs of simple server frames.
 *
 * Why masking is here: it touches every byte a client sends, and the best
 * pure-Python trick (bytes.translate over four strided lanes, see _mask.py)
 * runs at about 1 GB/s; a uint64 XOR loop runs at memory speed.
 *
 * Why decode_run is here: a server streaming small messages costs the
 * pure-Python decoder a header parse, a frame object and a few attribute
 * loads per message, about as much as zlib's inflate of a 1 KiB message;
 * decode_run does that walk in C and leaves every other frame (and every
 * error) to codec.py.  With permessage-deflate it also calls zlib's
 * decompress itself for the routine message (through the extension's
 * inflate hook, see InflateHook in extensions/base.py): the Python call
 * into the extension and a second copy of the payload cost about 0.3 us
 * per message, 8% of inflating 1 KiB.
 *
 * The module is optional: codec.py and _mask.py fall back to pure Python,
 * which stays the reference, when this file was not compiled or
 * MINT_NO_SPEEDUPS=1.
 *
 * The masking functions accept any object exporting the buffer protocol
 * (bytes, bytearray, memoryview, array, mmap, ...), contiguous or not, and
 * mask its raw bytes as bytes(memoryview(data)) would give them.  The input
 * buffer is held (bytearray cannot resize) while the GIL is released for
 * large inputs, so another thread can at worst change bytes being read,
 * never free them.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

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
"bytes are the masking key as it goes on the wire.  payload is bytes-like,\n"
"or a str, which is masked as its UTF-8 encoding.");

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

    /* A str payload (encode_text) is masked straight from its UTF-8 form, with
       no bytes object in between: an ASCII str is its own UTF-8, and CPython
       keeps the UTF-8 form of any other str once asked for it. */
    Py_buffer view;
    void *copy = NULL;
    const unsigned char *src;
    Py_ssize_t size;
    int from_str = PyUnicode_CheckExact(args[2]);
    if (from_str) {
        src = (const unsigned char *)PyUnicode_AsUTF8AndSize(args[2], &size);
        if (src == NULL) {
            return NULL; /* UnicodeEncodeError: a lone surrogate */
        }
    }
    else {
        if (get_bytes(args[2], &view, &copy, "payload") != 0) {
            return NULL;
        }
        src = bytes_of(&view, copy);
        size = view.len;
    }
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
        mask_into(src, out + header_size, size, key);
    }
    if (!from_str) {
        release_bytes(&view, copy);
    }
    return result;
}

/* -- decoding runs of simple frames ------------------------------------------------------ */

#ifdef Py_T_OBJECT_EX
#define OBJECT_SLOT Py_T_OBJECT_EX
#else
#define OBJECT_SLOT T_OBJECT_EX
#endif
#ifdef Py_READONLY
#define SLOT_READONLY Py_READONLY
#else
#define SLOT_READONLY READONLY
#endif
#ifdef Py_T_BOOL
#define BOOL_SLOT Py_T_BOOL
#else
#define BOOL_SLOT T_BOOL
#endif

/*
 * Set by configure_frames: the frame classes, where their `data` and `fin`
 * slots live (Ping and Pong have no `fin`: offset -1), and the exception
 * class that decode_message may raise as is.  Strong references, kept for
 * the life of the process.
 */
typedef struct {
    PyTypeObject *type;
    Py_ssize_t data_offset;
    Py_ssize_t fin_offset;
} FrameLayout;

static FrameLayout text_layout = {NULL, 0, 0};
static FrameLayout binary_layout = {NULL, 0, 0};
static FrameLayout ping_layout = {NULL, 0, -1};
static FrameLayout pong_layout = {NULL, 0, -1};
static PyObject *protocol_error = NULL;

/*
 * The offset of the writable object slot `name` of `cls`, read from the
 * member descriptor the class itself uses to get and set it (so the frames
 * built here are stored exactly as `descriptor.__set__` would store them).
 * -1 with TypeError set when `name` is not such a slot of `cls`.
 */
static Py_ssize_t
slot_offset(PyTypeObject *cls, const char *name)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)cls, name);
    if (descr == NULL) {
        return -1;
    }
    Py_ssize_t offset = -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type) && PyDescr_TYPE(descr) == cls) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == OBJECT_SLOT && !(member->flags & SLOT_READONLY)
            && member->offset >= (Py_ssize_t)sizeof(PyObject)
            && member->offset <= cls->tp_basicsize - (Py_ssize_t)sizeof(PyObject *)) {
            offset = member->offset;
        }
    }
    Py_DECREF(descr);
    if (offset < 0) {
        PyErr_Format(PyExc_TypeError, "%.100s.%s is not an object slot", cls->tp_name, name);
    }
    return offset;
}

/*
 * A frame class is usable when object.__new__ would allocate it with
 * tp_alloc alone (no custom __new__, fixed size, not abstract) and `data`
 * and (when with_fin) `fin` are two distinct object slots.
 */
static int
frame_layout(PyObject *cls, FrameLayout *layout, int with_fin)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "frame classes must be types");
        return -1;
    }
    PyTypeObject *type = (PyTypeObject *)cls;
    if (type->tp_new != PyBaseObject_Type.tp_new || type->tp_itemsize != 0
        || type->tp_alloc == NULL || PyType_HasFeature(type, Py_TPFLAGS_IS_ABSTRACT)) {
        PyErr_Format(PyExc_TypeError, "%.100s is not allocated by object.__new__ alone",
                     type->tp_name);
        return -1;
    }
    Py_ssize_t data_offset = slot_offset(type, "data");
    if (data_offset < 0) {
        return -1;
    }
    Py_ssize_t fin_offset = with_fin ? slot_offset(type, "fin") : -1;
    if (with_fin && fin_offset < 0) {
        return -1;
    }
    if (data_offset == fin_offset) {
        PyErr_Format(PyExc_TypeError, "%.100s.data and .fin share a slot", type->tp_name);
        return -1;
    }
    Py_INCREF(cls);
    Py_XSETREF(layout->type, type);
    layout->data_offset = data_offset;
    layout->fin_offset = fin_offset;
    return 0;
}

PyDoc_STRVAR(configure_frames_doc,
"configure_frames(text, binary, protocol_error, ping, pong, /) -> None\n"
"\n"
"Tell decode_run which classes its Text and Binary frames are (slotted\n"
"classes with `data` and `fin` slots, allocated by object.__new__), which\n"
"exception class decode_message may raise unwrapped, and which classes its\n"
"Ping and Pong frames are (slotted, a `data` slot).  Raises TypeError, and\n"
"leaves decode_run unusable, if a class does not fit.");

static void
clear_layouts(void)
{
    Py_CLEAR(text_layout.type);
    Py_CLEAR(binary_layout.type);
    Py_CLEAR(ping_layout.type);
    Py_CLEAR(pong_layout.type);
}

static PyObject *
configure_frames(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError,
                     "configure_frames() takes exactly 5 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!PyExceptionClass_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "protocol_error must be an exception class");
        return NULL;
    }
    clear_layouts();
    if (frame_layout(args[0], &text_layout, 1) != 0
        || frame_layout(args[1], &binary_layout, 1) != 0
        || frame_layout(args[3], &ping_layout, 0) != 0
        || frame_layout(args[4], &pong_layout, 0) != 0) {
        clear_layouts();
        return NULL;
    }
    Py_INCREF(args[2]);
    Py_XSETREF(protocol_error, args[2]);
    Py_RETURN_NONE;
}

/*
 * A frame of `layout`'s class holding `data` (a reference this steals) and,
 * when the class has a `fin` slot, fin.
 */
static PyObject *
new_frame(const FrameLayout *layout, PyObject *data, int fin)
{
    PyObject *frame = layout->type->tp_alloc(layout->type, 0);
    if (frame == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    /* tp_alloc zero-filled the slots: nothing to release. */
    *(PyObject **)((char *)frame + layout->data_offset) = data;
    if (layout->fin_offset >= 0) {
        *(PyObject **)((char *)frame + layout->fin_offset) = Py_NewRef(fin ? Py_True : Py_False);
    }
    /*
     * A frozen frame holding a str or bytes and a bool can be part of no
     * reference cycle, so the cyclic GC has nothing to find in it: untrack
     * it, as CPython untracks tuples of such atoms.  Thousands of tracked
     * frames per read otherwise cost about 0.05 us each in young-generation
     * collections.
     */
    if (PyObject_GC_IsTracked(frame)) {
        PyObject_GC_UnTrack(frame);
    }
    return frame;
}

/*
 * A limit argument: None (no limit) or an int >= 0, as an unsigned count
 * where ULLONG_MAX stands for "no limit" (lengths here are under 2**16).
 */
static int
as_limit(PyObject *obj, unsigned long long *limit, const char *what)
{
    if (obj == Py_None) {
        *limit = ULLONG_MAX;
        return 0;
    }
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int or None", what);
        return -1;
    }
    int overflow;
    long long value = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (value == -1 && PyErr_Occurred()) {
        return -1;
    }
    if (overflow < 0 || (overflow == 0 && value < 0)) {
        PyErr_Format(PyExc_ValueError, "%s must not be negative", what);
        return -1;
    }
    *limit = overflow > 0 ? ULLONG_MAX : (unsigned long long)value;
    return 0;
}

/* The exception being raised, normalized, its traceback attached; the error indicator cleared. */
static PyObject *
take_exception(void)
{
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (type == NULL) {
        return NULL;
    }
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL) {
        PyException_SetTraceback(value, traceback);
    }
    Py_DECREF(type);
    Py_XDECREF(traceback);
    return value;
#endif
}

/* Raise `exception` again (a reference this steals), as take_exception found it. */
static void
raise_exception(PyObject *exception)
{
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exception);
#else
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exception)), exception,
                  PyException_GetTraceback(exception));
#endif
}

/*
 * decode_message raised: do what codec.py's `except ProtocolError: raise` /
 * `except Exception as exc: raise extension_failure(owner, exc) from exc` does.
 */
static void
wrap_extension_failure(PyObject *extension_failure, PyObject *owner)
{
    PyObject *exception = take_exception();
    if (exception == NULL) {
        PyErr_SetString(PyExc_SystemError, "decode_message failed without an exception");
        return;
    }
    if (PyErr_GivenExceptionMatches(exception, protocol_error)
        || !PyErr_GivenExceptionMatches(exception, PyExc_Exception)) {
        raise_exception(exception);
        return;
    }
    PyObject *wrapped = PyObject_CallFunctionObjArgs(extension_failure, owner, exception, NULL);
    if (wrapped == NULL) {
        Py_DECREF(exception);
        return;
    }
    if (!PyExceptionInstance_Check(wrapped)) {
        Py_DECREF(wrapped);
        Py_DECREF(exception);
        PyErr_SetString(PyExc_TypeError, "extension_failure must return an exception");
        return;
    }
    PyException_SetContext(wrapped, Py_NewRef(exception));
    PyException_SetCause(wrapped, exception); /* steals; sets __suppress_context__ */
    raise_exception(wrapped);
}

/*
 * The frame for one payload: Text (strict UTF-8; UnicodeDecodeError raised
 * as is, as bytes.decode raises it) or Binary.  Steals `payload`.
 */
static PyObject *
data_frame(unsigned int opcode, PyObject *payload)
{
    if (opcode == 0x2) {
        return new_frame(&binary_layout, payload, 1);
    }
    PyObject *text = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(payload),
                                          PyBytes_GET_SIZE(payload), NULL);
    Py_DECREF(payload);
    if (text == NULL) {
        return NULL;
    }
    return new_frame(&text_layout, text, 1);
}

/*
 * What message_frame needs from decode_run's arguments (borrowed references),
 * and the extension's inflate hook as last read (see InflateHook in
 * extensions/base.py; owned references, released by release_hook).
 */
typedef struct {
    PyObject *decode_message; /* NULL: no extension */
    PyObject *message_limit_arg;
    unsigned long long message_limit;
    PyObject *check_decoded;
    PyObject *extension_failure;
    PyObject *owner;
    /* The extension's inflate_hook, inflate_finished, inflate_failed; NULL: no hook offered. */
    PyObject *inflate_hook;
    PyObject *inflate_finished;
    PyObject *inflate_failed;
    /* Ask inflate_hook before the next message: the extension's state may have changed. */
    int hook_stale;
    /* The current hook (NULL: none, decode_message does it all) and what it holds. */
    PyObject *hook;
    unsigned int hook_rsv;
    PyObject *decompressor; /* borrowed from hook */
    PyObject *decompress;   /* decompressor.decompress, bound */
    Py_ssize_t eof_offset;  /* where decompressor.eof is stored as a C char; -1: getattr */
    const char *tail;       /* borrowed from hook */
    Py_ssize_t tail_size;
    /* max_length for decompress: message_limit + 1, or NULL for no limit. */
    PyObject *max_length;
} RunContext;

static PyObject *str_decompress = NULL;
static PyObject *str_eof = NULL;

/*
 * Where `obj.eof` lives when it is a plain bool member of its type (as for
 * zlib's, bz2's and lzma's decompressors), so that reading it is a load
 * instead of an attribute lookup (about 25 ns per message); -1 otherwise.
 * A member descriptor is a data descriptor, so with the generic getattr
 * nothing (no instance dict) can hide it: the load gives what obj.eof gives.
 */
static Py_ssize_t
eof_member_offset(PyObject *obj)
{
    PyTypeObject *type = Py_TYPE(obj);
    if (type->tp_getattro != PyObject_GenericGetAttr) {
        return -1;
    }
    PyObject *descr = PyObject_GetAttr((PyObject *)type, str_eof);
    if (descr == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t offset = -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type)
        && PyObject_TypeCheck(obj, PyDescr_TYPE(descr))) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == BOOL_SLOT && member->offset >= (Py_ssize_t)sizeof(PyObject)
            && member->offset < PyDescr_TYPE(descr)->tp_basicsize) {
            offset = member->offset;
        }
    }
    Py_DECREF(descr);
    return offset;
}

static void
release_hook(RunContext *run)
{
    Py_CLEAR(run->hook);
    Py_CLEAR(run->decompress);
    run->decompressor = NULL;
    run->tail = NULL;
}

/*
 * Read the extension's current hook into `run`: inflate_hook() returns None
 * or (rsv, decompressor, tail).  -1 with an exception set when it fails or
 * returns anything else (the caller wraps it as the extension's failure).
 */
static int
refresh_hook(RunContext *run)
{
    run->hook_stale = 0;
    release_hook(run);
    PyObject *hook = PyObject_CallNoArgs(run->inflate_hook);
    if (hook == NULL) {
        return -1;
    }
    if (hook == Py_None) {
        Py_DECREF(hook);
        return 0;
    }
    if (!PyTuple_Check(hook) || PyTuple_GET_SIZE(hook) != 3
        || !PyLong_Check(PyTuple_GET_ITEM(hook, 0))
        || !PyBytes_Check(PyTuple_GET_ITEM(hook, 2))) {
        Py_DECREF(hook);
        PyErr_SetString(PyExc_TypeError,
                        "inflate_hook() must return None or (rsv: int, decompressor, tail: bytes)");
        return -1;
    }
    long rsv = PyLong_AsLong(PyTuple_GET_ITEM(hook, 0));
    if (rsv == -1 && PyErr_Occurred()) {
        Py_DECREF(hook);
        return -1;
    }
    if (rsv <= 0 || (rsv & ~0x70L)) {
        Py_DECREF(hook);
        PyErr_SetString(PyExc_ValueError, "inflate_hook() rsv must be RSV bits, not 0");
        return -1;
    }
    PyObject *decompressor = PyTuple_GET_ITEM(hook, 1);
    PyObject *decompress = PyObject_GetAttr(decompressor, str_decompress);
    if (decompress == NULL) {
        Py_DECREF(hook);
        return -1;
    }
    if (run->max_length == NULL && run->message_limit < (unsigned long long)PY_SSIZE_T_MAX) {
        run->max_length = PyLong_FromUnsignedLongLong(run->message_limit + 1);
        if (run->max_length == NULL) {
            Py_DECREF(decompress);
            Py_DECREF(hook);
            return -1;
        }
    }
    PyObject *tail = PyTuple_GET_ITEM(hook, 2);
    run->hook = hook;
    run->hook_rsv = (unsigned int)rsv;
    run->decompressor = decompressor;
    run->decompress = decompress;
    run->eof_offset = eof_member_offset(decompressor);
    run->tail = PyBytes_AS_STRING(tail);
    run->tail_size = PyBytes_GET_SIZE(tail);
    return 0;
}

/*
 * decompress raised: what `raise inflate_failed(exc) from exc` (or a bare
 * `raise` when it returns exc itself) does, then the usual wrapping of an
 * extension's exception.  Exceptions that are not Exceptions go on as they are.
 */
static void
inflate_failure(RunContext *run)
{
    run->hook_stale = 1;
    PyObject *exception = take_exception();
    if (exception == NULL) {
        PyErr_SetString(PyExc_SystemError, "decompress failed without an exception");
        return;
    }
    if (!PyErr_GivenExceptionMatches(exception, PyExc_Exception)) {
        raise_exception(exception);
        return;
    }
    PyObject *replacement = PyObject_CallOneArg(run->inflate_failed, exception);
    if (replacement == NULL) {
        /* inflate_failed itself raised: that, during the handling of exception. */
        PyObject *raised = take_exception();
        if (raised != NULL) {
            PyException_SetContext(raised, exception); /* steals */
            raise_exception(raised);
        }
        else {
            Py_DECREF(exception);
        }
    }
    else if (replacement == exception) {
        Py_DECREF(replacement);
        raise_exception(exception);
    }
    else if (!PyExceptionInstance_Check(replacement)) {
        Py_DECREF(replacement);
        Py_DECREF(exception);
        PyErr_SetString(PyExc_TypeError, "inflate_failed() must return an exception");
    }
    else {
        PyException_SetContext(replacement, Py_NewRef(exception));
        PyException_SetCause(replacement, exception); /* steals; sets __suppress_context__ */
        raise_exception(replacement);
    }
    wrap_extension_failure(run->extension_failure, run->owner);
}

/*
 * A compressed message through the hook (see InflateHook): payload and tail
 * copied into one new bytes object straight from the input, decompressed
 * with max_length = limit + 1, and handed back to the extension only when
 * the result is over the limit or the stream ended.  A new reference, or
 * NULL with the exception decode_message would have raised (wrapped).
 */
static PyObject *
inflate_message(RunContext *run, const char *start, Py_ssize_t length)
{
    Py_ssize_t tail_size = run->tail_size;
    if (length > PY_SSIZE_T_MAX - tail_size) {
        return PyErr_NoMemory();
    }
    PyObject *input = PyBytes_FromStringAndSize(NULL, length + tail_size);
    if (input == NULL) {
        return NULL;
    }
    char *buffer = PyBytes_AS_STRING(input);
    memcpy(buffer, start, (size_t)length);
    memcpy(buffer + length, run->tail, (size_t)tail_size);
    /* A free slot before the arguments lets the bound method put self there. */
    PyObject *call_args[3] = {NULL, input, run->max_length};
    size_t nargs = (run->max_length != NULL ? 2 : 1) | PY_VECTORCALL_ARGUMENTS_OFFSET;
    PyObject *data = PyObject_Vectorcall(run->decompress, call_args + 1, nargs, NULL);
    Py_DECREF(input);
    if (data == NULL) {
        inflate_failure(run);
        return NULL;
    }
    if (!PyBytes_Check(data)) {
        Py_DECREF(data);
        PyErr_SetString(PyExc_TypeError, "the hooked decompress() must return bytes");
        wrap_extension_failure(run->extension_failure, run->owner);
        return NULL;
    }
    int finished = (unsigned long long)PyBytes_GET_SIZE(data) > run->message_limit;
    if (!finished && run->eof_offset >= 0) {
        finished = *((const char *)run->decompressor + run->eof_offset) != 0;
    }
    else if (!finished) {
        PyObject *eof = PyObject_GetAttr(run->decompressor, str_eof);
        finished = eof == NULL ? -1 : PyObject_IsTrue(eof);
        Py_XDECREF(eof);
        if (finished < 0) {
            Py_DECREF(data);
            wrap_extension_failure(run->extension_failure, run->owner);
            return NULL;
        }
    }
    if (finished) {
        run->hook_stale = 1;
        PyObject *finish_args[4] = {NULL, run->decompressor, data, run->message_limit_arg};
        PyObject *result = PyObject_Vectorcall(run->inflate_finished, finish_args + 1,
                                               3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        Py_DECREF(data);
        if (result == NULL) {
            wrap_extension_failure(run->extension_failure, run->owner);
        }
        data = result;
    }
    return data;
}

/* decode_message(opcode, payload, rsv, message_limit), its exceptions wrapped. */
static PyObject *
call_decode_message(RunContext *run, unsigned int opcode, unsigned int rsv, const char *start,
                    Py_ssize_t length)
{
    PyObject *payload = PyBytes_FromStringAndSize(start, length);
    if (payload == NULL) {
        return NULL;
    }
    /* A free slot before the arguments lets a bound method put self there. */
    PyObject *call_args[5] = {NULL, PyLong_FromLong((long)opcode), payload,
                              PyLong_FromLong((long)rsv), run->message_limit_arg};
    PyObject *decoded = NULL;
    if (call_args[1] != NULL && call_args[3] != NULL) {
        run->hook_stale = 1;
        decoded = PyObject_Vectorcall(run->decode_message, call_args + 1,
                                      4 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
        if (decoded == NULL) {
            wrap_extension_failure(run->extension_failure, run->owner);
        }
    }
    Py_XDECREF(call_args[1]);
    Py_XDECREF(call_args[3]);
    Py_DECREF(payload);
    return decoded;
}

/*
 * The frame for a simple frame's payload (`length` bytes at `start`): through
 * the extension when there is one (its hook, or decode_message), then into a
 * Text or a Binary.  NULL with an exception set on failure.
 */
static PyObject *
message_frame(RunContext *run, unsigned int opcode, unsigned int rsv, const char *start,
              Py_ssize_t length)
{
    if (run->inflate_hook != NULL && run->hook_stale && refresh_hook(run) != 0) {
        wrap_extension_failure(run->extension_failure, run->owner);
        return NULL;
    }
    /* With a hook, a frame with no RSV bit is the message as it came (see InflateHook). */
    int plain = run->decode_message == NULL
        || (rsv == 0 && run->hook != NULL
            && (unsigned long long)length <= run->message_limit);
    if (plain && opcode == 0x1) {
        /* The text comes straight from the input, no bytes in between. */
        PyObject *text = PyUnicode_DecodeUTF8(start, length, NULL);
        if (text == NULL) {
            return NULL;
        }
        return new_frame(&text_layout, text, 1);
    }
    PyObject *decoded;
    if (plain) {
        decoded = PyBytes_FromStringAndSize(start, length);
        if (decoded == NULL) {
            return NULL;
        }
        return data_frame(opcode, decoded);
    }
    if (run->hook != NULL && rsv == run->hook_rsv) {
        decoded = inflate_message(run, start, length);
    }
    else {
        decoded = call_decode_message(run, opcode, rsv, start, length);
    }
    if (decoded == NULL) {
        return NULL;
    }
    if (!PyBytes_CheckExact(decoded)
        || (unsigned long long)PyBytes_GET_SIZE(decoded) > run->message_limit) {
        /* What codec.py does with such a result: check_decoded(owner, result, 0). */
        PyObject *zero = PyLong_FromLong(0);
        PyObject *checked = zero == NULL ? NULL
            : PyObject_CallFunctionObjArgs(run->check_decoded, run->owner, decoded, zero, NULL);
        Py_XDECREF(zero);
        Py_DECREF(decoded);
        if (checked == NULL) {
            return NULL;
        }
        if (!PyBytes_Check(checked)) {
            Py_DECREF(checked);
            PyErr_SetString(PyExc_TypeError, "check_decoded() must return bytes");
            return NULL;
        }
        decoded = checked;
    }
    return data_frame(opcode, decoded);
}

/* message_frame's frame appended to frames; -1 with an exception on failure. */
static int
append_message(RunContext *run, unsigned int opcode, unsigned int rsv, const char *start,
               Py_ssize_t length, PyObject *frames)
{
    PyObject *message = message_frame(run, opcode, rsv, start, length);
    if (message == NULL) {
        return -1;
    }
    int failed = PyList_Append(frames, message);
    Py_DECREF(message);
    return failed;
}

/* -- fragmented messages and control frames ---------------------------------------------- */

static PyObject *str_recv_opcode = NULL;
static PyObject *str_parts = NULL;
static PyObject *str_message_size = NULL;
static PyObject *str_utf8_tail = NULL;
static PyObject *empty_str = NULL;

/*
 * The message being received in fragments, as the WebSocket (owner) keeps
 * it in four attributes that codec.py's _deliver_message reads and writes:
 * _recv_opcode (0: none open), _parts (the pieces so far: str for text,
 * bytes for binary), _message_size (payload bytes so far) and _utf8_tail
 * (the bytes of an unfinished UTF-8 sequence at the end of the last text
 * fragment).  decode_run reads them when it starts and writes them back
 * before it returns, error or not, so that either decoder can take the
 * next frame: the state lives only in the WebSocket.
 */
typedef struct {
    long opcode;
    int loaded;           /* parts, size and tail were read from owner */
    int dirty;            /* changed since read: write back */
    PyObject *parts;      /* owned; NULL once a message ended (a new [] is stored) */
    unsigned long long size;
    PyObject *tail;       /* owned bytes */
} MessageState;

/* What a Python int attribute holds, as an unsigned count; -1 with an exception on failure. */
static int
get_count(PyObject *owner, PyObject *name, unsigned long long *value)
{
    PyObject *obj = PyObject_GetAttr(owner, name);
    if (obj == NULL) {
        return -1;
    }
    *value = PyLong_AsUnsignedLongLong(obj);
    Py_DECREF(obj);
    if (*value == (unsigned long long)-1 && PyErr_Occurred()) {
        return -1;
    }
    return 0;
}

/* _recv_opcode only: all a run of unfragmented messages needs to know. */
static int
load_opcode(PyObject *owner, MessageState *state)
{
    unsigned long long opcode;
    if (get_count(owner, str_recv_opcode, &opcode) != 0) {
        return -1;
    }
    if (opcode > 0x2) {
        PyErr_SetString(PyExc_ValueError, "decode_run() owner._recv_opcode is not 0, 1 or 2");
        return -1;
    }
    state->opcode = (long)opcode;
    return 0;
}

/* The rest of the message state, read once per run when a fragment needs it. */
static int
load_message(PyObject *owner, MessageState *state)
{
    if (state->loaded) {
        return 0;
    }
    if (get_count(owner, str_message_size, &state->size) != 0) {
        return -1;
    }
    PyObject *parts = PyObject_GetAttr(owner, str_parts);
    if (parts == NULL) {
        return -1;
    }
    PyObject *tail = PyObject_GetAttr(owner, str_utf8_tail);
    if (tail == NULL) {
        Py_DECREF(parts);
        return -1;
    }
    if (!PyList_CheckExact(parts) || !PyBytes_CheckExact(tail)) {
        Py_DECREF(parts);
        Py_DECREF(tail);
        PyErr_SetString(PyExc_TypeError,
                        "decode_run() owner._parts must be a list, _utf8_tail bytes");
        return -1;
    }
    state->parts = parts;
    state->tail = tail;
    state->loaded = 1;
    return 0;
}

/* Set owner.name to value (a reference this steals); -1 with an exception on failure. */
static int
set_stolen(PyObject *owner, PyObject *name, PyObject *value)
{
    if (value == NULL) {
        return -1;
    }
    int failed = PyObject_SetAttr(owner, name, value);
    Py_DECREF(value);
    return failed;
}

/*
 * Write a changed state back to owner and release it.  Runs on every exit,
 * also with an exception pending (kept as it is, unless the write itself
 * fails): codec.py then sees the state _deliver_message would have left.
 */
static int
store_message(PyObject *owner, MessageState *state)
{
    int failed = 0;
    if (state->dirty) {
        PyObject *pending = take_exception();
        /* Each value is made only when the one before was stored: nothing to release. */
        failed = set_stolen(owner, str_recv_opcode, PyLong_FromLong(state->opcode)) != 0
            || set_stolen(owner, str_parts,
                          state->parts != NULL ? Py_NewRef(state->parts) : PyList_New(0))
                != 0
            || set_stolen(owner, str_message_size, PyLong_FromUnsignedLongLong(state->size))
                != 0
            || set_stolen(owner, str_utf8_tail, Py_NewRef(state->tail)) != 0;
        if (pending != NULL) {
            if (failed) {
                PyErr_Clear();
            }
            raise_exception(pending);
        }
    }
    Py_CLEAR(state->parts);
    Py_CLEAR(state->tail);
    return failed ? -1 : 0;
}

/*
 * The next piece of a fragmented text message: what codec.py's
 * `utf_8_decode(tail + payload, "strict", fin)` returns, the new tail being
 * what it did not consume (an unfinished sequence, at most 3 bytes).  The
 * same CPython decoder runs on the same bytes, so a UnicodeDecodeError is
 * raised at the same fragment with the same message.
 */
static PyObject *
text_piece(MessageState *state, const char *start, Py_ssize_t length, int fin)
{
    Py_ssize_t tail_size = PyBytes_GET_SIZE(state->tail);
    const char *data = start;
    Py_ssize_t size = length;
    char *joined = NULL;
    if (tail_size > 0) {
        if (length > PY_SSIZE_T_MAX - tail_size) {
            return PyErr_NoMemory();
        }
        size = tail_size + length;
        joined = PyMem_Malloc((size_t)size);
        if (joined == NULL) {
            return PyErr_NoMemory();
        }
        memcpy(joined, PyBytes_AS_STRING(state->tail), (size_t)tail_size);
        memcpy(joined + tail_size, start, (size_t)length);
        data = joined;
    }
    Py_ssize_t consumed = size;
    PyObject *piece = PyUnicode_DecodeUTF8Stateful(data, size, NULL, fin ? NULL : &consumed);
    if (piece != NULL) {
        PyObject *tail = PyBytes_FromStringAndSize(data + consumed, size - consumed);
        if (tail == NULL) {
            Py_CLEAR(piece);
        }
        else {
            Py_SETREF(state->tail, tail);
        }
    }
    PyMem_Free(joined);
    return piece;
}

/*
 * b"".join(parts) for a list of bytes: one allocation, one copy of each piece.
 * The pieces before this run's came from codec.py: checked, not assumed.
 */
static PyObject *
join_bytes(PyObject *parts)
{
    Py_ssize_t count = PyList_GET_SIZE(parts);
    Py_ssize_t total = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *piece = PyList_GET_ITEM(parts, i);
        if (!PyBytes_CheckExact(piece)) {
            PyErr_SetString(PyExc_TypeError, "decode_run() owner._parts holds a non-bytes");
            return NULL;
        }
        Py_ssize_t size = PyBytes_GET_SIZE(piece);
        if (size > PY_SSIZE_T_MAX - total) {
            return PyErr_NoMemory();
        }
        total += size;
    }
    PyObject *joined = PyBytes_FromStringAndSize(NULL, total);
    if (joined == NULL) {
        return NULL;
    }
    char *out = PyBytes_AS_STRING(joined);
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *piece = PyList_GET_ITEM(parts, i);
        memcpy(out, PyBytes_AS_STRING(piece), (size_t)PyBytes_GET_SIZE(piece));
        out += PyBytes_GET_SIZE(piece);
    }
    return joined;
}

/*
 * A checked data frame of a fragmented message (no extension): what
 * codec.py's _deliver_message does with it, in the same order, so that the
 * state after an invalid UTF-8 piece is the same too.  With `fragments`
 * every piece is a frame of its own; else the pieces are kept in parts and
 * joined into one frame at the last fragment.
 */
static int
take_fragment(PyObject *owner, MessageState *state, int fragments, unsigned int opcode,
              int fin, const char *start, Py_ssize_t length, PyObject *frames)
{
    if (load_message(owner, state) != 0) {
        return -1;
    }
    state->dirty = 1;
    if (opcode != 0) {
        PyObject *parts = PyList_New(0);
        if (parts == NULL) {
            return -1;
        }
        Py_XSETREF(state->parts, parts);
        PyObject *no_tail = PyBytes_FromStringAndSize(NULL, 0);
        if (no_tail == NULL) {
            return -1;
        }
        Py_SETREF(state->tail, no_tail);
        state->opcode = (long)opcode;
    }
    /* Checked against the message limit before: no overflow (length < 2**16). */
    state->size += (unsigned long long)length;
    int text = state->opcode == 0x1;
    PyObject *piece = text ? text_piece(state, start, length, fin)
                           : PyBytes_FromStringAndSize(start, length);
    if (piece == NULL) {
        return -1;
    }
    const FrameLayout *layout = text ? &text_layout : &binary_layout;
    PyObject *frame = NULL;
    if (fragments) {
        frame = new_frame(layout, piece, fin);
        if (frame == NULL) {
            return -1;
        }
    }
    else {
        if (state->parts == NULL) {
            /* Only after a message ended in this run, and then opcode != 0. */
            Py_DECREF(piece);
            PyErr_SetString(PyExc_SystemError, "decode_run() lost its message parts");
            return -1;
        }
        int failed = PyList_Append(state->parts, piece);
        Py_DECREF(piece);
        if (failed) {
            return -1;
        }
        if (fin) {
            PyObject *whole = text ? PyUnicode_Join(empty_str, state->parts)
                                   : join_bytes(state->parts);
            if (whole == NULL) {
                return -1;
            }
            frame = new_frame(layout, whole, 1);
            if (frame == NULL) {
                return -1;
            }
        }
    }
    if (fin) {
        state->opcode = 0;
        state->size = 0;
        Py_CLEAR(state->parts);
    }
    if (frame != NULL) {
        int failed = PyList_Append(frames, frame);
        Py_DECREF(frame);
        if (failed) {
            return -1;
        }
    }
    return 0;
}

/* A Ping or Pong (checked: FIN, no RSV, at most 125 bytes) appended to frames. */
static int
take_control(unsigned int opcode, const char *start, Py_ssize_t length, PyObject *frames)
{
    PyObject *payload = PyBytes_FromStringAndSize(start, length);
    if (payload == NULL) {
        return -1;
    }
    PyObject *frame = new_frame(opcode == 0x9 ? &ping_layout : &pong_layout, payload, 1);
    if (frame == NULL) {
        return -1;
    }
    int failed = PyList_Append(frames, frame);
    Py_DECREF(frame);
    return failed;
}

/* What read_header found at a position. */
enum {
    HEADER_NOT_OURS, /* codec.py's _decode_frame takes it: all its checks and errors */
    HEADER_PARTIAL,  /* ours, but more bytes are needed (*need set) */
    HEADER_READY,    /* ours and complete */
};

typedef struct {
    unsigned int opcode;
    int fin;
    unsigned int rsv;
    Py_ssize_t header;
    Py_ssize_t length;
} FrameHeader;

/*
 * Is the frame at `p` (`available` >= 2 bytes) one decode_run takes?  Only
 * when every check codec.py's _decode_frame would make on it passes, so
 * that taking it or waiting for it (HEADER_PARTIAL, with the `need` that
 * _decode_frame would compute) is what _decode_frame would do too:
 *
 * - unmasked, and a 7- or 16-bit length not over frame_limit;
 * - a ping or pong: FIN, no RSV bit, at most 125 bytes;
 * - a text or binary frame with RSV bits within rsv_allowed, when no
 *   message is open, FIN unless there is an extension;
 * - a continuation frame of the open message, when there is no extension
 *   (an extension's state follows the fragments: codec.py feeds them);
 * - with no extension, the message so far plus this frame within
 *   message_limit.
 *
 * Close frames, reserved opcodes and every fault go to _decode_frame.
 */
static int
read_header(const unsigned char *p, Py_ssize_t available, long rsv_allowed,
            unsigned long long frame_limit, const RunContext *run, const MessageState *state,
            FrameHeader *frame, Py_ssize_t *need)
{
    unsigned int first = p[0];
    unsigned int second = p[1];
    unsigned int opcode = first & 0x0Fu;
    unsigned int rsv = first & 0x70u;
    int fin = (first & 0x80u) != 0;
    int extension = run->decode_message != NULL;
    if (second & 0x80u) {
        return HEADER_NOT_OURS;
    }
    Py_ssize_t header = 2;
    Py_ssize_t length = (Py_ssize_t)second;
    if (opcode >= 0x8) {
        if ((opcode != 0x9 && opcode != 0xA) || rsv || !fin || second > 125
            || (unsigned long long)length > frame_limit) {
            return HEADER_NOT_OURS;
        }
    }
    else {
        if (opcode > 0x2 || (rsv & ~(unsigned long)rsv_allowed) || second > 126) {
            return HEADER_NOT_OURS;
        }
        if (opcode == 0x0 ? (state->opcode == 0 || extension) : state->opcode != 0) {
            return HEADER_NOT_OURS;
        }
        if (!fin && extension) {
            return HEADER_NOT_OURS;
        }
        if (second == 126) {
            if (available < 4) {
                *need = 4;
                return HEADER_PARTIAL;
            }
            length = (Py_ssize_t)(((unsigned int)p[2] << 8) | p[3]);
            header = 4;
        }
        if ((unsigned long long)length > frame_limit) {
            return HEADER_NOT_OURS;
        }
        if (!extension) {
            /* The size so far is only known here for an open message (0 otherwise). */
            unsigned long long so_far = state->opcode != 0 ? state->size : 0;
            if (so_far > run->message_limit
                || (unsigned long long)length > run->message_limit - so_far) {
                return HEADER_NOT_OURS;
            }
        }
    }
    if (length > available - header) {
        *need = header + length;
        return HEADER_PARTIAL;
    }
    frame->opcode = opcode;
    frame->fin = fin;
    frame->rsv = rsv;
    frame->header = header;
    frame->length = length;
    return HEADER_READY;
}

PyDoc_STRVAR(decode_run_doc,
"decode_run(data, pos, frames, owner, config, /) -> (pos, need)\n"
"\n"
"config is (rsv_allowed, frame_limit, message_limit, decode_message,\n"
"check_decoded, extension_failure, inflate, fragments), fixed per\n"
"WebSocket (owner).\n"
"\n"
"Decode the run of frames in data (bytes) from pos on that need none of\n"
"codec.py's checks to fail, appending a frame to the list frames for each:\n"
"unmasked, a 7- or 16-bit length not over frame_limit, and either a ping\n"
"or a pong (FIN, no RSV bit, at most 125 bytes), or a text or binary frame\n"
"with RSV bits within rsv_allowed that starts a message when none is open,\n"
"or (with no decode_message only) a continuation frame of the open\n"
"message; with no decode_message the message may not outgrow message_limit.\n"
"The message being received in fragments is owner's _recv_opcode, _parts,\n"
"_message_size and _utf8_tail, read at the start and written back before\n"
"returning (see _deliver_message in codec.py); fragments (a bool) asks for\n"
"each fragment as a frame of its own instead of whole messages.\n"
"\n"
"With decode_message (an extension's, see Extension.decode_message) every\n"
"message in one frame goes through decode_message(opcode, payload, rsv,\n"
"message_limit); a result that is not exact bytes or is over message_limit\n"
"goes through check_decoded(owner, result, 0); an exception from\n"
"decode_message other than a protocol_error (see configure_frames) or a\n"
"non-Exception is replaced by extension_failure(owner, exc), chained from\n"
"it.  Invalid UTF-8 in a text frame or fragment raises UnicodeDecodeError.\n"
"Frames decoded before an exception stay in frames.\n"
"\n"
"inflate is None or the extension's (inflate_hook, inflate_finished,\n"
"inflate_failed): then a payload goes through the hook inflate_hook()\n"
"returns (see InflateHook) instead of decode_message when it can, and\n"
"inflate_hook() is asked again after every call into the extension.\n"
"\n"
"Returns where the run stopped and, when it stopped inside a frame it\n"
"takes, how many bytes from there that frame needs; need 0 means the frame\n"
"at pos (if any) is not one it takes and is the caller's to decode.");

static PyObject *
decode_run(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    (void)module;
    if (nargs != 5) {
        PyErr_Format(PyExc_TypeError, "decode_run() takes exactly 5 arguments (%zd given)",
                     nargs);
        return NULL;
    }
    PyObject *data = args[0];
    PyObject *frames = args[2];
    PyObject *owner = args[3];
    PyObject *config = args[4];
    if (!PyTuple_Check(config) || PyTuple_GET_SIZE(config) != 8) {
        PyErr_SetString(PyExc_TypeError, "decode_run() config must be a tuple of 8 items");
        return NULL;
    }
    PyObject *message_limit_arg = PyTuple_GET_ITEM(config, 2);
    PyObject *decode_message = PyTuple_GET_ITEM(config, 3);
    PyObject *check_decoded = PyTuple_GET_ITEM(config, 4);
    PyObject *extension_failure = PyTuple_GET_ITEM(config, 5);
    PyObject *inflate = PyTuple_GET_ITEM(config, 6);
    int fragments = PyObject_IsTrue(PyTuple_GET_ITEM(config, 7));
    if (fragments < 0) {
        return NULL;
    }
    if (decode_message == Py_None) {
        decode_message = NULL;
    }
    if (text_layout.type == NULL || binary_layout.type == NULL || ping_layout.type == NULL
        || pong_layout.type == NULL || protocol_error == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "decode_run() needs configure_frames() first");
        return NULL;
    }
    if (!PyBytes_CheckExact(data)) {
        PyErr_SetString(PyExc_TypeError, "decode_run() data must be bytes");
        return NULL;
    }
    if (!PyList_Check(frames)) {
        PyErr_SetString(PyExc_TypeError, "decode_run() frames must be a list");
        return NULL;
    }
    if (inflate != Py_None
        && (decode_message == NULL || !PyTuple_Check(inflate) || PyTuple_GET_SIZE(inflate) != 3)) {
        PyErr_SetString(PyExc_TypeError,
                        "decode_run() inflate must be None or a tuple of 3 callables, "
                        "with decode_message");
        return NULL;
    }
    Py_ssize_t end = PyBytes_GET_SIZE(data);
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (pos < 0 || pos > end) {
        PyErr_SetString(PyExc_ValueError, "decode_run() pos is outside data");
        return NULL;
    }
    long rsv_allowed = PyLong_AsLong(PyTuple_GET_ITEM(config, 0));
    if (rsv_allowed == -1 && PyErr_Occurred()) {
        return NULL;
    }
    unsigned long long frame_limit, message_limit;
    if (as_limit(PyTuple_GET_ITEM(config, 1), &frame_limit, "frame_limit") != 0
        || as_limit(message_limit_arg, &message_limit, "message_limit") != 0) {
        return NULL;
    }
    MessageState state = {0};
    if (load_opcode(owner, &state) != 0
        || (state.opcode != 0 && load_message(owner, &state) != 0)) {
        store_message(owner, &state);
        return NULL;
    }
    RunContext run = {
        .decode_message = decode_message,
        .message_limit_arg = message_limit_arg,
        .message_limit = message_limit,
        .check_decoded = check_decoded,
        .extension_failure = extension_failure,
        .owner = owner,
        .hook_stale = 1,
    };
    if (inflate != Py_None) {
        run.inflate_hook = PyTuple_GET_ITEM(inflate, 0);
        run.inflate_finished = PyTuple_GET_ITEM(inflate, 1);
        run.inflate_failed = PyTuple_GET_ITEM(inflate, 2);
    }
    const unsigned char *bytes = (const unsigned char *)PyBytes_AS_STRING(data);
    Py_ssize_t need = 0;
    PyObject *result = NULL;
    for (;;) {
        Py_ssize_t available = end - pos;
        if (available < 2) {
            break;
        }
        unsigned int first = bytes[pos];
        unsigned int opcode = first & 0x0Fu;
        Py_ssize_t second = bytes[pos + 1];
        /*
         * The common case first, without read_header's other branches (they cost
         * about 5% on a run of small messages): a whole text or binary message in
         * one frame, RSV bits allowed, a 7-bit length within the limits (no message
         * is open, so that length is the message's size), all of it in data.
         */
        if ((first & 0x80u) && (opcode == 0x1 || opcode == 0x2)
            && !(first & 0x70u & ~(unsigned long)rsv_allowed) && second < 126
            && state.opcode == 0 && (unsigned long long)second <= frame_limit
            && (decode_message != NULL || (unsigned long long)second <= message_limit)
            && second <= available - 2) {
            if (append_message(&run, opcode, first & 0x70u, (const char *)bytes + pos + 2,
                               second, frames) != 0) {
                goto done;
            }
            pos += 2 + second;
            continue;
        }
        FrameHeader frame;
        int found = read_header(bytes + pos, available, rsv_allowed, frame_limit, &run, &state,
                                &frame, &need);
        if (found != HEADER_READY) {
            break;
        }
        const char *start = (const char *)bytes + pos + frame.header;
        if (frame.opcode >= 0x8) {
            if (take_control(frame.opcode, start, frame.length, frames) != 0) {
                goto done;
            }
        }
        else if (frame.opcode != 0 && frame.fin) {
            if (append_message(&run, frame.opcode, frame.rsv, start, frame.length, frames) != 0) {
                goto done;
            }
        }
        else if (take_fragment(owner, &state, fragments, frame.opcode, frame.fin, start,
                               frame.length, frames) != 0) {
            goto done;
        }
        pos += frame.header + frame.length;
    }
    result = Py_BuildValue("(nn)", pos, need);
done:
    if (store_message(owner, &state) != 0) {
        Py_CLEAR(result);
    }
    release_hook(&run);
    Py_XDECREF(run.max_length);
    return result;
}

static PyMethodDef speedups_methods[] = {
    {"apply_mask", (PyCFunction)(void (*)(void))apply_mask, METH_FASTCALL, apply_mask_doc},
    {"masked_frame", (PyCFunction)(void (*)(void))masked_frame, METH_FASTCALL,
     masked_frame_doc},
    {"configure_frames", (PyCFunction)(void (*)(void))configure_frames, METH_FASTCALL,
     configure_frames_doc},
    {"decode_run", (PyCFunction)(void (*)(void))decode_run, METH_FASTCALL, decode_run_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "mint.websocket._speedups",
    .m_doc = "C versions of the codec's hot loops: masking and decode runs (optional).",
    .m_size = 0,
    .m_methods = speedups_methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (str_decompress == NULL) {
        str_decompress = PyUnicode_InternFromString("decompress");
        if (str_decompress == NULL) {
            return NULL;
        }
    }
    if (str_eof == NULL) {
        str_eof = PyUnicode_InternFromString("eof");
        if (str_eof == NULL) {
            return NULL;
        }
    }
    struct {
        PyObject **slot;
        const char *text;
    } names[] = {
        {&str_recv_opcode, "_recv_opcode"},
        {&str_parts, "_parts"},
        {&str_message_size, "_message_size"},
        {&str_utf8_tail, "_utf8_tail"},
        {&empty_str, ""},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (*names[i].slot == NULL) {
            *names[i].slot = PyUnicode_InternFromString(names[i].text);
            if (*names[i].slot == NULL) {
                return NULL;
            }
        }
    }
    return PyModuleDef_Init(&speedups_module);
}
