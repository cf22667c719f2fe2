"""What MNIST is: the facts that the data, the networks and the reports share."""

NUM_CLASSES = 10  # the digits 0-9
IMAGE_SIDE = 28  # images are 28x28 grayscale pixels
IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE
TRAIN_SET_SIZE = 60_000

# Pixel statistics of the training set, in [0, 1] units, for data.normalize.
PIXEL_MEAN = 0.1307
PIXEL_STD = 0.3081

# The four original files, as published and as torchvision downloads them.
RAW_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
