import sys

from caffe2keras.cli import main

sys.exit(main())
