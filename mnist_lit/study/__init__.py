"""``mnist-lit study``: the loss comparison done fairly.

For each network (softmax regression, the 784-100-10 MLP, the CNN) and each loss
(cross-entropy, the tutorial's softmax-twice, quadratic on softmax, square loss on
logits): the learning rate is tuned on the validation split by successive halving over
the same grid for every loss; the chosen rate is trained with several seeds and evaluated
once on the 10,000 test images; losses are compared with paired tests.

- :mod:`~mnist_lit.study.plan`: the networks, losses and budgets;
- :mod:`~mnist_lit.study.halving`: the rounds of the tuning (pure);
- :mod:`~mnist_lit.study.schedule`: which fits each network and loss needs next;
- :mod:`~mnist_lit.study.folder`: the study folder, its layout and records;
- :mod:`~mnist_lit.study.cluster`: the Dask cluster the fits run on;
- :mod:`~mnist_lit.study.runner`: the fits as Dask tasks, each result written as it comes;
- :mod:`~mnist_lit.study.stats`: intervals, McNemar, paired t-test, Holm (pure);
- :mod:`~mnist_lit.study.report`: results.csv, comparisons and the summary;
- :mod:`~mnist_lit.study.plots`: the pictures (pure: data in, Figure out);
- :mod:`~mnist_lit.study.command`: the options.
"""
