"""The pipeline that produces learned_filter_v1: fetch, train, export, quantise, validate.

Each step is a module runnable as ``python -m training.<step>``, named after the model card's scripts:
``fetch_konvid_1k``, ``train_konvid``, ``export_tiny_models``, ``ptq_dynamic``, ``ptq_static``,
``measure_quant_drop``, ``validate_model_registry``. torch lives in the optional ``train`` extra.
"""
