"""The three drift controls of the study, library side.

    corruptions   ImageNet-C-style common corruptions on RGB tensors (the augmentation baseline)
    forensics     adversarial search over ParametrizedISP parameters (drift forensics)
"""
