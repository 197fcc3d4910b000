"""The three drift controls of the study, library side (the scripts are their command lines).

    corruptions        ImageNet-C-style common corruptions on RGB tensors (the augmentation baseline)
    synthesis          drift synthesis: a trained model on every ISP variant x intensity, and on corruptions
    forensics          the adversarial search over ParametrizedISP parameters, with its distance bound
    forensics_report   drift forensics of a training output folder: batches, sweep, adversarial processors
    optimization       drift optimisation: one model per (ISP, intensity), validation curves
    plots              the reports' pictures; reports: report folders and CSV tables
"""
