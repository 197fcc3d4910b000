"""Independent references the tests and benchmarks check the project against.

    reference_isp   the static ISP chain per image in float64 numpy, on colour-demosaicing,
                    scipy and scikit-image (install the ``test`` extra)
"""
