"""Pure-NumPy neural-network engine (imports numpy and the stdlib only).

The interface is docs/INTERNALS.md "app.nn"; the details it leaves open:

- ``MLP.params`` is one flat buffer (every weight matrix row-major, then every
  bias vector); ``weights``/``biases`` are views into it and
  ``network.param_views(flat, layer_sizes, use_bias)`` rebuilds them from a copy.
- ``losses.loss_value(loss, output, target)`` takes a dense target of the
  output's shape (one-hot; binary: the 0/1 label as one column).
- ``datasets``: ``DatasetError.field``/``.message``; ``labels_to_json(task, y)``
  gives y in the ``custom`` form (labels, or target rows for regression —
  always rows), ``dataset_to_json(data)`` the whole ``/data`` body.
  ``dataset_catalog()`` has ``n_inputs``/``n_outputs`` null where they depend on
  the parameters (gauss/spiral outputs, teacher, custom; custom's task too).
- ``training.resolve_head`` raises ``HeadError`` (a ValueError with ``.field``).
- ``Trainer.train_epoch``: on divergence the weights, optimizer state and shuffle
  RNG return to their values before that epoch, ``trainer.epoch`` does not
  advance, and the returned metrics (``epoch`` = the failed one) have
  ``diverged=True`` and the non-finite losses; ``learning_rate`` is the rate the
  epoch trained with (None from ``evaluate``).
- ``metrics.EpochMetrics``: the one type of an epoch's metrics, from the trainer to
  the store and the stream; ``finite()`` is the stored form (non-finite -> None).
- ``TrainerState``: ``arrays`` = {"params", "optimizer.<name>.<i>"...};
  ``meta`` is JSON-safe (the PCG64 state's 128-bit ints are strings).
- ``descent.gradient_descent_1d(fn_name, x0, lr, steps)``: the article's 1-D example.
- ``features``: TF Playground's input features of a 2-D input (``with_features``).
- ``Trainer(error_propagation="weights_only")``: the article's shortcut, compiled in
  ``kernel.weights_only_backward_ops``; ``Trainer.set_penalties`` changes l1/l2 live.
- ``activations``: the one home of each activation's math, the compiled trainer's op
  lists included (``Activation.ops``/``dops``, which ``kernel.py`` binds).
- ``schedules.scheduled_rate``: the learning-rate schedules' closed forms.
"""
