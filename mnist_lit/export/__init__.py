"""``mnist-lit export``: a checkpoint as an ONNX file or a ``torch.export`` program, checked
against the checkpoint on MNIST's test images before it is written."""
