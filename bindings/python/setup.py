"""Builds the eplb wheel from a CMake build (target eplb_python_wheel); not run by hand.

EPLB_PACKAGE_DIR is the assembled package (the SWIG module, the Python files and libeplb.so);
EPLB_VERSION the library version."""

import os

from setuptools import Distribution, setup


class BinaryDistribution(Distribution):
    """The package holds native code: the wheel gets this platform's tag."""

    def has_ext_modules(self):
        return True


package_dir = os.environ["EPLB_PACKAGE_DIR"]
setup(
    name="eplb",
    version=os.environ["EPLB_VERSION"],
    description="Expert-parallel load balancing for Mixture-of-Experts serving (libeplb)",
    packages=["eplb"],
    package_dir={"eplb": package_dir},
    package_data={"eplb": ["*.so", "*.so.*"]},
    install_requires=["numpy"],
    python_requires=">=3.9",
    distclass=BinaryDistribution,
    zip_safe=False,
)
