"""Replay a module's inference forward as CUDA graphs, one per input shape.

At batch 1 the fusion blocks issue several thousand small kernels per image pair and the GPU
waits on Python to launch them; a captured graph launches them all at once.
"""
from collections import OrderedDict
from typing import Callable, Dict, Hashable, Tuple

import torch
from torch.utils._pytree import tree_map

MAX_GRAPHS = 8  # input shapes kept captured; the least recently used is dropped beyond


class CUDAGraphRunner:
    """Call ``fn(inputs)`` through CUDA graphs captured per input signature.

    ``inputs`` is a dict of CUDA tensors; the signature is their names, shapes and dtypes
    plus the autocast state. The first call with a signature runs ``fn`` eagerly a few times
    on a side stream (Triton compiles, cuDNN picks its algorithms), then captures it; every
    call copies the inputs into the graph's static buffers, replays the graph and returns
    clones of its outputs (so a later replay never overwrites what the caller holds).

    ``fn`` must be free of host synchronisation and of data-dependent shapes (backbone,
    neck and head forward are; NMS is not), and is only ever run without gradients.

    Args:
        fn (callable): dict of tensors -> tensor / nested tuples and lists of tensors.
        warmup (int): Eager runs before a capture.
    """

    def __init__(self, fn: Callable, warmup: int = 3):
        self.fn = fn
        self.warmup = warmup
        self.graphs: 'OrderedDict[Hashable, Tuple]' = OrderedDict()

    @staticmethod
    def signature(inputs: Dict[str, torch.Tensor]) -> Hashable:
        autocast = (torch.is_autocast_enabled('cuda'),
                    torch.get_autocast_dtype('cuda') if torch.is_autocast_enabled('cuda')
                    else None)
        return tuple((k, tuple(v.shape), v.dtype, v.device)
                     for k, v in sorted(inputs.items())) + (autocast, )

    def _capture(self, inputs: Dict[str, torch.Tensor]) -> Tuple:
        static_inputs = {k: v.clone() for k, v in inputs.items()}
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.fn(static_inputs)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        autocast = torch.is_autocast_enabled('cuda')
        dtype = torch.get_autocast_dtype('cuda')
        # autocast's cast cache would hold casts made outside the graph's memory pool
        with torch.cuda.graph(graph), torch.autocast('cuda', dtype=dtype, enabled=autocast,
                                                     cache_enabled=False):
            static_outputs = self.fn(static_inputs)
        return graph, static_inputs, static_outputs

    @torch.no_grad()
    def __call__(self, inputs: Dict[str, torch.Tensor]):
        for name, tensor in inputs.items():
            if tensor.device.type != 'cuda':
                raise ValueError(f'CUDA graphs need CUDA inputs, got {name} on {tensor.device}')
        key = self.signature(inputs)
        if key not in self.graphs:
            self.graphs[key] = self._capture(inputs)
            if len(self.graphs) > MAX_GRAPHS:
                self.graphs.popitem(last=False)
        self.graphs.move_to_end(key)
        graph, static_inputs, static_outputs = self.graphs[key]
        for name, tensor in inputs.items():
            static_inputs[name].copy_(tensor)
        graph.replay()
        return tree_map(lambda t: t.clone() if isinstance(t, torch.Tensor) else t,
                        static_outputs)
