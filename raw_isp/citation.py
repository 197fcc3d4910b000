"""How to cite the study behind Raw-Microscopy and Raw-Drone (used by the builders and metrics)."""

#: BibTeX of the study both datasets were published with (the builders' ``citation``).
STUDY_CITATION = """@article{oala2023data,
  title   = {Data Models for Dataset Drift Controls in Machine Learning With Optical Images},
  author  = {Oala, Luis and Aversa, Marco and Nobis, Gabriel and Willis, Kurt and Neuenschwander, Yoan
             and Buck, Mich{\\`e}le and Matek, Christian and Extermann, J{\\'e}r{\\^o}me and Pomarico, Enrico
             and Samek, Wojciech and Murray-Smith, Roderick and Clausen, Christoph and Sanguinetti, Bruno},
  journal = {Transactions on Machine Learning Research},
  year    = {2023}
}"""
