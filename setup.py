from setuptools import find_packages, setup

setup(
    name="rnn_dyn",
    version="0.1.0",
    description="Train large populations of RNNs and compare their geometry and dynamics.",
    long_description=open("README.md").read() if __import__("os").path.exists("README.md") else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["rnn_dyn", "rnn_dyn.*"]),
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "mlflow>=3.7",
        "numpy",
        "scipy",
        "scikit-learn",
        "matplotlib",
        "fire",
        "pyyaml",
        "tqdm",
        "threadpoolctl",
    ],
    extras_require={
        "test": ["pytest", "dask[distributed]"],
        "dask": ["dask[distributed]"],
    },
    entry_points={"console_scripts": ["rnn-dyn=rnn_dyn.experiments:main"]},
)
