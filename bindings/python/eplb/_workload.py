"""The workload simulator: synthetic top-k routing (the C header's "workload simulator" section)."""

import threading

import numpy as np

from . import _capi, _field, _Handle, _invalid, _real, _unsigned

_COUNTS = ("num_layers", "num_experts", "top_k", "num_groups", "topk_groups", "num_topics",
           "topic_experts")
_REALS = ("sigma_min", "sigma_max", "topic_zipf", "boost", "topic_persistence", "drift_rho",
          "noise_scale")


class Workload(_Handle):
    """Generates simulated top-k routing, batch after batch: lognormal expert popularity per
    layer, latent topics that make experts co-activate, temporal locality and drift, optionally
    DeepSeek's group-limited routing (see eplb_workload_options in eplb.h). Deterministic for a
    seed on every platform. Calls are serialised with a lock (the C simulator is used by one
    thread at a time)."""

    _destroy = staticmethod(_capi.eplb_workload_destroy)

    num_layers = _field("num_layers", "Layers per batch.")
    num_experts = _field("num_experts", "Logical experts per layer.")
    top_k = _field("top_k", "Experts per token.")

    def __init__(self, num_layers=None, num_experts=None, top_k=None, num_groups=None,
                 topk_groups=None, num_topics=None, topic_experts=None, sigma_min=None,
                 sigma_max=None, topic_zipf=None, boost=None, topic_persistence=None,
                 drift_rho=None, noise_scale=None, seed=None):
        """Each argument left None keeps the library's default (num_layers 1, num_experts 256,
        top_k 8, num_groups 1, topk_groups 0 = all, num_topics 32, topic_experts 0 = 2 x top_k,
        sigma 0.5..0.9, topic_zipf 1, boost 1, topic_persistence 0.8, drift_rho 1 = no drift,
        noise_scale 1, seed 0). The library checks the values (InvalidArgumentError naming the
        field)."""
        given = dict(locals())
        options = _capi.eplb_workload_options()
        for name in _COUNTS:
            if given[name] is not None:
                setattr(options, name, _unsigned(given[name], name, 32))
        for name in _REALS:
            if given[name] is not None:
                setattr(options, name, _real(given[name], name))
        if seed is not None:
            options.seed = _unsigned(seed, "seed", 64)
        self._lock = threading.Lock()
        super().__init__(_capi.eplb_workload_create(options))
        self._fields = {name: getattr(options, name)
                        for name in ("num_layers", "num_experts", "top_k")}

    def next_batch(self, num_tokens):
        """The next batch: int32 [layers][num_tokens][top_k] logical expert ids (distinct within
        a row, never -1), e.g. Tracker.record(layer, batch[layer]). The popularity drifts
        afterwards. num_tokens must be >= 1."""
        num_tokens = _unsigned(num_tokens, "num_tokens", 64)
        if num_tokens == 0:
            raise _invalid("num_tokens (0) must be >= 1")
        size = self.num_layers * num_tokens * self.top_k
        if size > np.iinfo(np.intp).max // 4:
            raise _invalid(f"num_tokens ({num_tokens}) is too large")
        out = np.empty((self.num_layers, num_tokens, self.top_k), dtype=np.int32)
        with self._lock:
            _capi.eplb_workload_next_batch(self._h, num_tokens, out)
        return out

    def __repr__(self):
        if self._handle is None:
            return "Workload(closed)"
        return (f"Workload(layers={self.num_layers}, experts={self.num_experts}, "
                f"top_k={self.top_k})")
