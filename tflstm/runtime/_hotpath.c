/* The step hot path in C: lock, copy (or normalize) one call's float32 input into the
 * interpreter's input buffer, refuse NaN/Inf, invoke, copy the output.
 *
 * `tflstm.runtime.executor.Executor.bind_step` builds a `Step` when this module is
 * importable and falls back to the same logic in Python otherwise. A `Step` holds
 * raw pointers into the interpreter's input buffer; it keeps the arrays that own
 * that memory (and so the interpreter) alive. Anything but an exact numpy float32
 * array of an accepted shape, C-contiguous, goes to `fallback` (`Executor.run`),
 * with the lock held, as in Python.
 *
 * Only the buffer protocol is used: no numpy headers, so one build serves NumPy 1
 * and 2.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define MAX_SHAPES 4
#define MAX_RANK 4

typedef struct {
    int rank;
    Py_ssize_t shape[MAX_RANK];
    float *buffer;     /* the input tensor's buffer (viewed in this shape) */
    PyObject *array;   /* the array viewing it so (borrowed: kept alive by Step.keep) */
    PyObject *copy;    /* bound `copy` of the output view for this shape */
} Entry;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *acquire, *release;       /* the lock's bound methods; NULL: the caller holds the lock */
    PyObject *executor, *owner;        /* owner NULL: the buffers hold the caller's state */
    PyObject *make_resident;
    PyObject *ndarray;                 /* numpy.ndarray: only exact instances take the fast path */
    PyObject *invoke, *refused, *nonfinite, *fallback;
    PyObject *keep;                    /* the arrays owning the buffers pointed to */
    Py_ssize_t count, depth;           /* floats per call; features per time step */
    float *std, *mean;                 /* [depth] each, or NULL */
    int check;
    int entries;
    Entry entry[MAX_SHAPES];
} Step;

static PyObject *resident_name;

/* Raises whatever `function(args...)` raises; if it returns, a RuntimeError (it must raise). */
static PyObject *raise_through(PyObject *function, PyObject *const *args, size_t nargs) {
    PyObject *result = PyObject_Vectorcall(function, args, nargs, NULL);
    if (result != NULL) {
        Py_DECREF(result);
        PyErr_SetString(PyExc_RuntimeError, "tflstm hot path: a refusal handler returned instead of raising");
    }
    return NULL;
}

static int all_finite(const float *values, Py_ssize_t count) {
    uint32_t word, seen = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        memcpy(&word, values + i, sizeof word);
        /* exponent bits all ones: NaN or Inf */
        seen |= ((word & 0x7F800000u) == 0x7F800000u);
    }
    return !seen;
}

static const Entry *match(const Step *self, const Py_buffer *view) {
    if (view->itemsize != 4 || view->format == NULL || strcmp(view->format, "f") != 0) {
        return NULL;
    }
    for (int e = 0; e < self->entries; e++) {
        const Entry *entry = &self->entry[e];
        if (entry->rank != view->ndim) {
            continue;
        }
        int same = 1;
        for (int d = 0; d < entry->rank; d++) {
            same &= entry->shape[d] == view->shape[d];
        }
        if (same) {
            return entry;
        }
    }
    return NULL;
}

static void fill(const Step *self, float *buffer, const float *x) {
    Py_ssize_t count = self->count, depth = self->depth;
    if (self->std == NULL) {
        memcpy(buffer, x, (size_t)count * sizeof(float));
    } else if (self->mean == NULL) {
        for (Py_ssize_t i = 0; i < count; i++) {
            buffer[i] = x[i] / self->std[i % depth];
        }
    } else {
        for (Py_ssize_t i = 0; i < count; i++) {
            float centred = x[i] - self->mean[i % depth];
            buffer[i] = centred / self->std[i % depth];
        }
    }
}

/* One step with the lock held. */
static PyObject *step_locked(Step *self, PyObject *x) {
    if (self->owner != NULL) {
        PyObject *resident = PyObject_GetAttr(self->executor, resident_name);
        if (resident == NULL) {
            return NULL;
        }
        Py_DECREF(resident);  /* only its identity is compared */
        if (resident != self->owner) {
            PyObject *done = PyObject_CallNoArgs(self->make_resident);
            if (done == NULL) {
                return NULL;
            }
            Py_DECREF(done);
        }
    }
    if (self->entries == 0 || Py_TYPE(x) != (PyTypeObject *)self->ndarray) {
        return PyObject_CallOneArg(self->fallback, x);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(x, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        PyErr_Clear();  /* not C-contiguous: the general path copes */
        return PyObject_CallOneArg(self->fallback, x);
    }
    const Entry *entry = match(self, &view);
    if (entry == NULL) {
        PyBuffer_Release(&view);
        return PyObject_CallOneArg(self->fallback, x);
    }
    fill(self, entry->buffer, (const float *)view.buf);
    PyBuffer_Release(&view);
    if (self->check && !all_finite(entry->buffer, self->count)) {
        PyObject *args[2] = {x, entry->array};
        return raise_through(self->nonfinite, args, 2);  /* InputError naming the positions */
    }
    PyObject *done = PyObject_CallNoArgs(self->invoke);
    if (done == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_RuntimeError)) {
            return NULL;
        }
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyErr_NormalizeException(&type, &value, &traceback);
        if (traceback != NULL) {
            PyException_SetTraceback(value, traceback);
        }
        PyObject *args[1] = {value};
        raise_through(self->refused, args, 1);  /* ModelError from the RuntimeError */
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(traceback);
        return NULL;
    }
    Py_DECREF(done);
    return PyObject_CallNoArgs(entry->copy);
}

static PyObject *step_call(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Step *self = (Step *)callable;
    if (self->invoke == NULL) {
        PyErr_SetString(PyExc_TypeError, "this Step was not initialized");
        return NULL;
    }
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "step() takes exactly one positional argument (x)");
        return NULL;
    }
    if (self->acquire != NULL) {
        PyObject *taken = PyObject_CallNoArgs(self->acquire);
        if (taken == NULL) {
            return NULL;
        }
        Py_DECREF(taken);
    }
    PyObject *result = step_locked(self, args[0]);
    if (self->release != NULL) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyObject *released = PyObject_CallNoArgs(self->release);
        if (released == NULL) {
            Py_XDECREF(result);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(traceback);
            return NULL;
        }
        Py_DECREF(released);
        PyErr_Restore(type, value, traceback);
    }
    return result;
}

/* A float32 [n] array's values, copied into new memory; NULL with an error set otherwise. */
static float *copy_floats(PyObject *array, Py_ssize_t n, const char *what) {
    Py_buffer view;
    if (PyObject_GetBuffer(array, &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        return NULL;
    }
    float *values = NULL;
    if (view.itemsize != 4 || strcmp(view.format, "f") != 0 || view.len != n * 4) {
        PyErr_Format(PyExc_ValueError, "%s must be float32 [%zd], got %zd bytes of format %s",
                     what, n, view.len, view.format);
    } else if ((values = PyMem_Malloc((size_t)n * sizeof(float))) == NULL) {
        PyErr_NoMemory();
    } else {
        memcpy(values, view.buf, (size_t)n * sizeof(float));
    }
    PyBuffer_Release(&view);
    return values;
}

static int set_entry(Step *self, Entry *entry, PyObject *item) {
    PyObject *shape, *buffer, *copy;
    if (!PyArg_ParseTuple(item, "O!OO", &PyTuple_Type, &shape, &buffer, &copy)) {
        return -1;
    }
    Py_ssize_t rank = PyTuple_GET_SIZE(shape), count = 1;
    if (rank < 1 || rank > MAX_RANK) {
        PyErr_Format(PyExc_ValueError, "an input shape has rank 1 to %d, got %zd", MAX_RANK, rank);
        return -1;
    }
    entry->rank = (int)rank;
    for (Py_ssize_t d = 0; d < rank; d++) {
        entry->shape[d] = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, d));
        if (entry->shape[d] < 0) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_ValueError, "input dimensions must be >= 0");
            }
            return -1;
        }
        count *= entry->shape[d];
    }
    Py_buffer view;
    if (PyObject_GetBuffer(buffer, &view, PyBUF_WRITABLE | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) != 0) {
        return -1;
    }
    int ok = view.itemsize == 4 && strcmp(view.format, "f") == 0 && view.len == count * 4 && count == self->count;
    entry->buffer = (float *)view.buf;  /* owned by `buffer`, kept alive in self->keep */
    entry->array = buffer;
    PyBuffer_Release(&view);
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "an input buffer must be writable float32 with %zd values", self->count);
        return -1;
    }
    if (!PyCallable_Check(copy)) {
        PyErr_SetString(PyExc_TypeError, "an entry's output copy must be callable");
        return -1;
    }
    Py_INCREF(copy);
    entry->copy = copy;
    return 0;
}

static int step_init(PyObject *object, PyObject *args, PyObject *kwargs) {
    Step *self = (Step *)object;
    static char *names[] = {
        "lock", "executor", "owner", "make_resident", "ndarray", "invoke", "refused", "nonfinite", "fallback",
        "entries", "count", "depth", "std", "mean", "check", NULL,
    };
    PyObject *lock, *executor, *owner, *make_resident, *ndarray, *invoke, *refused, *nonfinite, *fallback;
    PyObject *entries, *std, *mean;
    Py_ssize_t count, depth;
    int check;
    if (self->executor != NULL) {
        PyErr_SetString(PyExc_TypeError, "a Step is initialized once");
        return -1;
    }
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "$OOOOO!OOOOO!nnOOp", names, &lock, &executor, &owner,
                                     &make_resident, &PyType_Type, &ndarray, &invoke, &refused, &nonfinite,
                                     &fallback, &PyList_Type, &entries, &count, &depth, &std, &mean, &check)) {
        return -1;
    }
    if (count < 1 || depth < 1 || count % depth != 0 || PyList_GET_SIZE(entries) > MAX_SHAPES) {
        PyErr_SetString(PyExc_ValueError, "count must be a multiple of depth >= 1, with at most 4 entries");
        return -1;
    }
    self->count = count;
    self->depth = depth;
    self->check = check;
    if (lock != Py_None) {
        if ((self->acquire = PyObject_GetAttrString(lock, "acquire")) == NULL ||
            (self->release = PyObject_GetAttrString(lock, "release")) == NULL) {
            return -1;
        }
    }
    if (owner != Py_None) {
        Py_INCREF(owner);
        Py_INCREF(make_resident);
        self->owner = owner;
        self->make_resident = make_resident;
    }
    Py_INCREF(executor);
    Py_INCREF(ndarray);
    Py_INCREF(refused);
    Py_INCREF(nonfinite);
    Py_INCREF(fallback);
    self->executor = executor;
    self->ndarray = ndarray;
    self->refused = refused;
    self->nonfinite = nonfinite;
    self->fallback = fallback;
    if ((self->keep = PySequence_Tuple(entries)) == NULL) {  /* a tuple: nobody can drop the buffers' owners */
        return -1;
    }
    if (std != Py_None && (self->std = copy_floats(std, depth, "std")) == NULL) {
        return -1;
    }
    if (mean != Py_None && (self->mean = copy_floats(mean, depth, "mean")) == NULL) {
        return -1;
    }
    for (Py_ssize_t e = 0; e < PyTuple_GET_SIZE(self->keep); e++) {
        if (set_entry(self, &self->entry[e], PyTuple_GET_ITEM(self->keep, e)) != 0) {
            return -1;
        }
        self->entries = (int)e + 1;
    }
    Py_INCREF(invoke);
    self->invoke = invoke;
    return 0;
}

static int step_traverse(Step *self, visitproc visit, void *arg) {
    Py_VISIT(self->acquire);
    Py_VISIT(self->release);
    Py_VISIT(self->executor);
    Py_VISIT(self->owner);
    Py_VISIT(self->make_resident);
    Py_VISIT(self->ndarray);
    Py_VISIT(self->invoke);
    Py_VISIT(self->refused);
    Py_VISIT(self->nonfinite);
    Py_VISIT(self->fallback);
    Py_VISIT(self->keep);
    for (int e = 0; e < self->entries; e++) {
        Py_VISIT(self->entry[e].copy);
    }
    return 0;
}

static int step_clear(Step *self) {
    Py_CLEAR(self->acquire);
    Py_CLEAR(self->release);
    Py_CLEAR(self->executor);
    Py_CLEAR(self->owner);
    Py_CLEAR(self->make_resident);
    Py_CLEAR(self->ndarray);
    Py_CLEAR(self->invoke);
    Py_CLEAR(self->refused);
    Py_CLEAR(self->nonfinite);
    Py_CLEAR(self->fallback);
    for (int e = 0; e < self->entries; e++) {
        Py_CLEAR(self->entry[e].copy);
    }
    self->entries = 0;  /* the buffers may go with `keep` */
    Py_CLEAR(self->keep);
    return 0;
}

static void step_dealloc(Step *self) {
    PyObject_GC_UnTrack(self);
    step_clear(self);
    PyMem_Free(self->std);
    PyMem_Free(self->mean);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *step_new(PyTypeObject *type, PyObject *Py_UNUSED(args), PyObject *Py_UNUSED(kwargs)) {
    Step *self = (Step *)type->tp_alloc(type, 0);  /* zeroed */
    if (self != NULL) {
        self->vectorcall = step_call;
    }
    return (PyObject *)self;
}

static PyTypeObject StepType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tflstm.runtime._hotpath.Step",
    .tp_doc = PyDoc_STR("One bound step of an interpreter: see tflstm.runtime.executor.Executor.bind_step."),
    .tp_basicsize = sizeof(Step),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Step, vectorcall),
    .tp_new = step_new,
    .tp_init = step_init,
    .tp_call = PyVectorcall_Call,
    .tp_traverse = (traverseproc)step_traverse,
    .tp_clear = (inquiry)step_clear,
    .tp_dealloc = (destructor)step_dealloc,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tflstm.runtime._hotpath",
    .m_doc = PyDoc_STR("The step hot path in C (see tflstm.runtime.executor)."),
    .m_size = -1,
};

PyMODINIT_FUNC PyInit__hotpath(void) {
    if (PyType_Ready(&StepType) < 0) {
        return NULL;
    }
    if ((resident_name = PyUnicode_InternFromString("resident")) == NULL) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&StepType);
    if (PyModule_AddObject(m, "Step", (PyObject *)&StepType) < 0) {
        Py_DECREF(&StepType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
