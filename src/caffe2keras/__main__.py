from caffe2keras.cli import run

run()
