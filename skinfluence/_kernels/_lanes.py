"""Short fixed-width vectors for numba kernels.

numba leaves LLVM's straight-line (SLP) vectoriser off, so eight scalar multiply-adds
on neighbouring entries stay eight scalar instructions. These two intrinsics state the
vector operation directly. Each lane computes exactly what the scalar code would: a
product, rounded, then a sum, rounded (no fused multiply-add, no reassociation), so
results are the same bits as the scalar loop.

numba's cache tracks the source file of each cached function only: after editing this
module, clear the caches of the kernels that use it (or set
``SKINFLUENCE_NUMBA_CACHE=0``) or they keep the old code.
"""

from llvmlite import ir
from numba.core import types
from numba.extending import intrinsic


def _float64_vector(x, writable=False):
    """A contiguous 1-D float64 array (the intrinsics ignore strides)."""
    return (
        isinstance(x, types.Array)
        and x.ndim == 1
        and x.layout == "C"
        and x.dtype == types.float64
        and (x.mutable or not writable)
    )


def _start_index(context, builder, sig, args):
    """``start`` as a machine-size integer (unsigned starts are zero-extended)."""
    return context.cast(builder, args[1], sig.args[1], types.intp)


@intrinsic
def load_lanes(typingctx, arr, start, like):
    """``arr[start:start + G]`` as a tuple of ``G`` floats, ``G = len(like)``.

    ``like`` is any tuple of ``G`` floats: its type carries the width into compilation.
    No bounds check: ``start + G <= len(arr)`` is the caller's duty.
    """
    if not (
        _float64_vector(arr)
        and isinstance(start, types.Integer)
        and isinstance(like, types.UniTuple)
        and like.dtype == types.float64
    ):
        return None
    width = like.count

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, value=args[0])
        base = builder.gep(ary.data, [_start_index(context, builder, sig, args)])
        out = context.get_constant_undef(sig.return_type)
        for g in range(width):
            x = builder.load(builder.gep(base, [ir.Constant(ir.IntType(64), g)]))
            out = builder.insert_value(out, x, g)
        return out

    return types.UniTuple(types.float64, width)(arr, start, like), codegen


@intrinsic
def add_scaled_lanes(typingctx, buf, start, coef, x):
    """``buf[start:start + G] += coef * x`` as one vector operation (``G = len(coef)``).

    No bounds check: ``start + G <= len(buf)`` is the caller's duty.
    """
    if not (
        _float64_vector(buf, writable=True)
        and isinstance(start, types.Integer)
        and isinstance(coef, types.UniTuple)
        and coef.dtype == types.float64
        and x == types.float64
    ):
        return None
    width = coef.count

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, value=args[0])
        vec_t = ir.VectorType(ir.DoubleType(), width)
        i32 = ir.IntType(32)
        c = ir.Constant(vec_t, ir.Undefined)
        xs = ir.Constant(vec_t, ir.Undefined)
        for g in range(width):
            c = builder.insert_element(c, builder.extract_value(args[2], g), ir.Constant(i32, g))
            xs = builder.insert_element(xs, args[3], ir.Constant(i32, g))
        start = _start_index(context, builder, sig, args)
        p = builder.bitcast(builder.gep(ary.data, [start]), vec_t.as_pointer())
        old = builder.load(p, align=8)
        builder.store(builder.fadd(old, builder.fmul(c, xs)), p, align=8)
        return context.get_dummy_value()

    return types.void(buf, start, coef, x), codegen
