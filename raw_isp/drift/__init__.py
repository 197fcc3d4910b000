"""The three drift controls of the study, library side (the scripts are their command lines).

    synthesis          drift synthesis: trained models on every ISP variant x intensity, and on corruptions
    synthesis_report   its cells over seeds with bootstrap intervals, summaries, pictures
    statistics         spread over seeds and bootstrap intervals over test images of the drift reports
    forensics          the adversarial search over ParametrizedISP parameters, with its distance bound
    forensics_report   drift forensics of a training output folder: batches, sweep, adversarial processors
    optimization       drift optimisation: one model per (ISP, intensity), validation curves
    plots              the reports' pictures; reports: report folders and CSV tables
"""
