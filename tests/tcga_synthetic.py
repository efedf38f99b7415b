"""A shrunk synthetic TCGA in Xena's layouts, for running the paper configs end to end without downloads.

* ``HiSeqV2.gz``: genes as rows, samples as columns, first header column ``sample``, log2(RSEM+1)-like values;
* ``PANCAN_clinicalMatrix``: first column ``sampleID``, Xena's ``_primary_disease`` / ``_cohort`` columns and the
  paper's clinical variables (``histological_type``, ``gender`` for LGG; ``PAM50Call_RNAseq`` for BRCA);
* ``genemania.adjlist.gz``: a networkx adjacency list over the same genes.

Genes are real HGNC symbols from TCGA's ``HiSeqV2`` gene list (written here, so no ``../shared`` is needed): the
75 ribosomal protein genes, RPL4 among them, and 325 others. Expression is modular: each module's genes share a
latent activity, and the graph is dense within modules with a few edges between them. RPL4 follows the
ribosomal module's activity, and its graph neighbourhood is that module, so single-gene inference of RPL4 from
its breadth-first neighbourhood is learnable. Clinical labels are driven by other modules' activities.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

RIBOSOMAL = """
RPL37 RPL31 RPL15 RPS12 RPL18A RPL12 RPS3 RPS13 RPS11 RPS10 RPS17 RPS15 RPS18 RPS16 RPL18 RPS20 RPL7A RPS29 RPL3
RPL38 RPL39 RPL36 RPL32 RPL30 RPL14 RPL17 RPL10 RPL11 RPL13 RPS4Y2 RPL27A RPL37A RPL23A RPL35A RPS26 RPS27 RPS24
RPS4Y1 RPS27A RPS6 RPS5 RPS2 RPS19 RPL29 RPL6 RPS4X RPS7 RPS9 RPS8 RPL28 RPL24 RPL27 RPL26 RPL21 RPL23 RPL22 RPS21
RPL8 RPS14 RPL9 RPL7 RPL4 RPL5 RPL19 RPS28 RPS15A RPL13A RPL34 RPL35 RPL41 RPS3A RPL10A RPL36A RPS25 RPS23
""".split()

OTHERS = """
A2M ABCA10 ABCD2 ACSL4 ADARB1 ADARB2 AKAP11 AKD1 AKTIP ALDH8A1 ANKRD13C ANXA3 APBB1IP APH1B APIP APOA4 APOBEC2
APOBEC3B APP ARFGAP3 ARFGEF2 ARHGAP21 ARHGAP26 ARHGEF38 ARID3B ARPP19 ART5 ATF7 ATP2C1 ATP6V1G1 ATXN7L3B BCL3 BCMO1
BGLAP BICC1 BIVM C4BPA CACNB1 CAMKV CAPN6 CAPN7 CATSPERG CBX1 CCK CCL4L2 CCR6 CD74 CELF4 CENPO CEP76 CFH CHRNA4
CHRNA5 CIB3 CLTB CNBD1 CNPY3 CNTNAP3 CRB2 CRH CRIPT CRY2 CSE1L CST1 DAPK2 DCBLD1 DHX40 DIRC1 DLG4 DNAH2 DPM1 DTL
ECT2L EFCAB5 EFNA5 EIF4A1 EIF4A2 ENO3 EPHA7 ERAS ERCC6 ETFB EVI2A EXO1 EYS FAF1 FAM105A FAM123A FAU FCRL2 FCRL3
FER1L5 FHL2 FKBP9 FRS2 FTH1 GDF5 GLI2 GLRA3 GNL1 GOLM1 GPA33 GPATCH3 GPD1L GPR143 GPR174 GPRC5C GREM1 GRM1 HES4
HIST1H2AM HNF1B HNRNPA1L2 HNRNPH3 HPS6 IDH1 IFI27L1 IKZF1 IL1RN IL2 INSRR IPO13 IPO8 IPW IQSEC3 ISOC1 ITIH4 JOSD1
KIAA0495 KIF5B KIFC3 KLHL34 KLK6 KRT15 KTI12 LAX1 LBH LCP2 LEUTX LGALS4 LHX1 LIF LIMD1 LIPN LPL LRRC10B LRRC46
LRRC47 LRRC4C LUC7L LUZP4 LYPLAL1 MALAT1 MAP6D1 MAPKBP1 MATN1 MFSD5 MGC16121 MIA2 MIXL1 MORN1 MOSC2 MRPL14 MRPL4
MS4A4A MTCH2 MTCP1 MUCL1 MYLPF MYO18B MYOC MYOM1 NDRG2 NDUFA12 NDUFB10 NEB NIPAL1 NLE1 NME3 NMU NOS3 NPIP NPPB NPY6R
NR3C2 NSUN4 OBP2B OPALIN OR10A5 OR10G9 OR2L8 OR4A15 OR7D4 OR8D1 OR8U1 OR9G9 PAQR3 PATE1 PBX1 PCBP3 PCF11 PCSK7
PDXDC2 PDZD2 PFN4 PIAS4 PITX1 PKP3 POLDIP2 POLR2J3 PPARG PPIL5 PPP3CB PPPDE2 PROS1 PRR20A PRR20D PSMD7 PSTK PTH
PTPN14 PTS PTX3 PXT1 QSOX2 RAB19 RAB7A RBKS RBP1 RG9MTD2 RGS16 RIMS1 RNF207 RNF208 ROBO1 ROPN1 RPF1 RPGR RPLP0
RRN3P2 RSAD2 S100A11 SCD SDC4 SDR9C7 SERAC1 SERP2 SERPINA9 SERPING1 SETDB2 SFRS8 SH3BGRL2 SH3GL3 SHC4 SIRT7 SIX6
SLC10A2 SLC25A40 SLC46A3 SNORD45A SNORD91B SNX11 SNX19 SORT1 SOX7 SPNS1 SPSB3 SQLE SRPK1 STARD8 STRADA SUMF1 SUZ12P
TBX5 TCAP TCL1A TEK TEKT3 TFEC TG THOC1 TICAM2 TMEM138 TMEM180 TMEM70 TNFAIP8L2 TNFSF10 TNFSF4 TP53AIP1 TP53BP2
TP53TG5 TRNAU1AP TSPYL6 TTBK1 TTC31 TUBGCP2 UBAC1 ULBP1 VARS VPS13D VSX1 WASH3P WDR72 WDR73 WHAMM WNT9B XIST YIF1B
ZC3H12C ZCCHC5 ZCWPW1 ZFR2 ZFYVE9 ZMIZ2 ZNF117 ZNF219 ZNF252 ZNF498 ZNF518A ZNF547 ZNF667 ZNF761 ZNF773 ZNF843
ZSWIM5
""".split()

GENES = RIBOSOMAL + OTHERS
TARGET = "RPL4"
MODULE_SIZE = 25  # the non-ribosomal genes form 13 modules of 25
# Module indices (0: ribosomal) whose activities drive the clinical labels.
HISTOLOGY_MODULE, GENDER_MODULE, PAM50_MODULES = 1, 2, (3, 4)


def modules(genes: list[str] = GENES) -> list[list[str]]:
    others = genes[len(RIBOSOMAL):]
    return [list(RIBOSOMAL)] + [others[i:i + MODULE_SIZE] for i in range(0, len(others), MODULE_SIZE)]


def sample_ids(n_samples: int) -> list[str]:
    return [f"TCGA-{chr(65 + i // 1000 % 26)}{chr(65 + i // 100 % 10)}-{1000 + i:04d}-01" for i in range(n_samples)]


def make_expression(n_samples: int = 450, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(values [genes, samples], module activities [samples, modules], sample ids)."""
    rng = np.random.default_rng(seed)
    groups = modules()
    activity = rng.normal(size=(n_samples, len(groups)))
    values = np.empty((len(GENES), n_samples))
    row = 0
    for m, members in enumerate(groups):
        for gene in members:
            base = rng.uniform(4.0, 11.0)
            # Each gene carries a weak share of its module's activity; RPL4 follows it closely.
            loading, noise = (1.0, 0.25) if gene == TARGET else (rng.uniform(0.4, 0.8), 1.0)
            values[row] = base + loading * activity[:, m] + noise * rng.normal(size=n_samples)
            row += 1
    return np.clip(values, 0.0, None), activity, sample_ids(n_samples)


def write_xena(path: Path, values: np.ndarray, ids: list[str]) -> Path:
    """Xena ``HiSeqV2`` layout: header ``sample`` + sample ids, then one gene per row."""
    with gzip.open(path, "wt") as handle:
        handle.write("\t".join(["sample", *ids]) + "\n")
        for gene, row in zip(GENES, values):
            handle.write(gene + "\t" + "\t".join(f"{v:.4f}" for v in row) + "\n")
    return path


def write_graph(path: Path, seed: int = 0, p_within: float = 0.2, n_between: int = 40) -> Path:
    """A networkx adjacency list (gzip): dense modules, RPL4 a hub of the ribosomal one, a few edges between."""
    rng = np.random.default_rng(seed)
    edges: set[tuple[str, str]] = set()
    for members in modules():
        for i, a in enumerate(members):
            for b in members[i + 1:]:
                if rng.random() < p_within or TARGET in (a, b) and rng.random() < 0.5:
                    edges.add((a, b))
    for _ in range(n_between):
        a, b = rng.choice(len(GENES), 2, replace=False)
        edges.add((GENES[a], GENES[b]))
    neighbours: dict[str, list[str]] = {g: [] for g in GENES}
    for a, b in sorted(edges):
        neighbours[a].append(b)
    with gzip.open(path, "wt") as handle:
        handle.write("# synthetic GeneMANIA-like graph over a shrunk TCGA gene set\n")
        for gene in GENES:
            handle.write(" ".join([gene, *neighbours[gene]]) + "\n")
    return path


def write_clinical(path: Path, activity: np.ndarray, ids: list[str], n_lgg: int = 200, seed: int = 0) -> Path:
    """Xena clinical matrix: the first ``n_lgg`` samples are LGG, the rest BRCA; labels follow module activities."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    lgg = np.arange(n) < n_lgg
    hist = np.digitize(activity[:, HISTOLOGY_MODULE], [-0.45, 0.45])
    gender = activity[:, GENDER_MODULE] + 0.3 * rng.normal(size=n) > 0
    a, b = activity[:, PAM50_MODULES[0]], activity[:, PAM50_MODULES[1]]
    pam50 = np.where(a > 0.8, 0, np.where(a < -0.8, 1, np.where(b > 0.5, 2, np.where(b < -0.5, 3, 4))))
    hist_names = np.array(["Astrocytoma", "Oligoastrocytoma", "Oligodendroglioma"])
    pam50_names = np.array(["Basal", "Her2", "LumA", "LumB", "Normal"])
    rows = ["\t".join(["sampleID", "_cohort", "_primary_disease", "gender", "histological_type",
                       "PAM50Call_RNAseq", "sample_type"])]
    for i, sample in enumerate(ids):
        if lgg[i]:
            cohort, disease = "TCGA Lower Grade Glioma (LGG)", "brain lower grade glioma"
            histology, subtype = hist_names[hist[i]], ""
            sex = "MALE" if gender[i] else "FEMALE"
        else:
            cohort, disease = "TCGA Breast Cancer (BRCA)", "breast invasive carcinoma"
            histology, sex = "Infiltrating Ductal Carcinoma", "FEMALE"
            subtype = "" if i % 9 == 0 else pam50_names[pam50[i]]  # some samples have no PAM50 call, as in Xena
        rows.append("\t".join([sample, cohort, disease, sex, histology, subtype, "Primary Tumor"]))
    path.write_text("\n".join(rows) + "\n")
    return path


def write_cohort(folder: Path, n_samples: int = 450, seed: int = 0) -> dict[str, Path]:
    """Every input file of the paper configs, in Xena's / networkx's layouts, under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    values, activity, ids = make_expression(n_samples, seed)
    return {"expression": write_xena(folder / "HiSeqV2.gz", values, ids),
            "clinical": write_clinical(folder / "PANCAN_clinicalMatrix", activity, ids, seed=seed),
            "graph": write_graph(folder / "genemania.adjlist.gz", seed)}
