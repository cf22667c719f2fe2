"""``mnist-lit study``: the loss comparison done fairly.

For each network (softmax regression, the 784-100-10 MLP, the CNN) and each loss
(cross-entropy, the tutorial's softmax-twice, quadratic on softmax, square loss on
logits): the learning rate is tuned on the validation split by successive halving over
the same grid for every loss; the chosen rate is trained with several seeds and evaluated
once on the 10,000 test images; losses are compared with paired tests.

docs/loss_study.md says what each of its modules does.
"""
