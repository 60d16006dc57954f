"""MiniLM's self-attention relations by name: which two of a layer's queries, keys and values each one relates.

v1 (MiniLM, Wang et al. 2020, Eq. 5-7): the attention distributions (Q-K) and the value relation (V-V);
v2 (MiniLMv2, Wang et al. 2021, Eq. 3-5): the Q-Q, K-K and V-V relations. The settings' choices and the loss
read these tables; no other place spells the names.
"""

V1_RELATIONS = {"attention": ("query", "key"), "value": ("value", "value")}
V2_RELATIONS = {"qq": ("query", "query"), "kk": ("key", "key"), "vv": ("value", "value")}
