"""The data layout of the economy: the user record, the tables the population step reads and the
aggregates it writes.

Every index constant of the model is defined here, once; the Numba kernels
(:mod:`~arena_env.economy.population`) and their NumPy twins (:mod:`~arena_env.economy.population_ref`)
import them from here, :mod:`~arena_env.economy.model` fills the tables, and
:mod:`~arena_env.economy.metrics` reads the aggregates.  The equations are in ``docs/model.md``.

* **User record** (:data:`USER_FIELDS`, :data:`USER_DTYPE`): one packed 48-byte record per user.
* **Tables of the day**, prepared by :mod:`~arena_env.economy.model`: the configs ``cfg`` (V, 10),
  columns ``P_*``; the per-(variant, segment) incentive table ``vs_tab`` (V, G, N_VS), columns
  ``VS_*``; the per-segment table ``sg_tab`` (G, N_SG), columns ``SG_*``; the global vector
  ``glob`` (N_GL,), entries ``GL_*``; the tenure table ``tenure`` (G, max_days + 1, N_TN), columns
  ``TN_*``; and ``log1p_tab``.  The kernels bundle them, with the day's derived constants, into one
  :class:`DayParams`.
* **Aggregates**, one row per (chunk, variant): integers ``agg_i`` (columns ``A_*``), floats
  ``agg_f`` (columns ``F_*``); per site ``site_prev`` / ``site_next`` (columns ``SITE_*``).
* **Random streams** ``S_*``: one stream constant per decision (see :mod:`arena_env.rng`).
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

# --- user state: fields of one packed record per user, name -> dtype; 48 bytes per user -------
USER_FIELDS = (
    ("variant", np.int8),  # 0 = control, 1.. = treatments
    ("segment", np.int8),  # index into the scenario's segments
    ("enroll_day", np.int16),  # day the user joins the experiment
    ("last_active", np.int16),  # last day with activity (enroll_day - 1 before the first one)
    ("streak", np.int16),  # consecutive active days ending on last_active (0 once broken)
    ("flags", np.uint8),  # bit 0: churned
    ("act7", np.uint8),  # activity bitmask of the last 7 days, bit 0 = today
    ("m_target", np.uint8),  # scans still required by the open mission; 0 = none open
    ("m_progress", np.uint8),  # scans made toward the open mission
    ("cum_xp", np.int64),  # XP credited since enrolment (int64: 32,000 days at the hard bounds pass 2**31)
    ("xp_today", np.int32),  # XP claimed today (credited pro rata by pay_out under a budget)
    ("ref_xp", np.float32),  # reference point: the daily XP (before streak bonus) the user got used to
    ("sat", np.float32),  # satisfaction in (0, 1)
    ("scan_ema", np.float32),  # scans per day, trailing window (metric SCAN_FREQUENCY)
    ("xp_ema", np.float32),  # XP per day, trailing window (metric XP_VELOCITY, site rank)
    ("trait", np.float32),  # engagement propensity, logit scale
    ("fb_trait", np.float32),  # feedback propensity, logit scale
)
USER_DTYPE = np.dtype(list(USER_FIELDS))  # packed (no padding): 48 bytes per user
FLAG_CHURNED = 1

# --- random streams -------------------------------------------------------------------------------
# S_SCANS and S_ISSUE each give a pair of 26-bit uniforms (scans and feedback; issues and status)
S_ACTIVE, S_SCANS, S_PHOTO, S_ISSUE, S_CHURN = 1, 2, 4, 5, 7

# --- the ten parameters (order of params.PARAM_NAMES): columns of cfg --------------------------
P_SCAN, P_FEEDBACK, P_ISSUE, P_STATUS, P_PHOTO, P_FIRST, P_STREAK_DAY, P_STREAK_CAP, P_SCAN_CAP, P_FB_CAP = range(10)

# --- per (variant, segment) table, prepared by model.variant_segment_table ----------------------
VS_ANTICIPATED = 0  # anticipated XP of an active day before the streak bonus (at the perceived payout)
VS_SCAN_LAM = 1  # Poisson mean of scans beyond the first
VS_SCAN_EXPNEG = 2  # exp(-VS_SCAN_LAM)
VS_FB_LOGIT = 3  # logit shift of the per-scan feedback probability (incentive + substitution)
VS_PHOTO_P = 4  # probability that a feedback carries a photo
VS_ISSUE_LAM = 5
VS_ISSUE_EXPNEG = 6
VS_STATUS_LAM = 7
VS_STATUS_EXPNEG = 8
# the Poisson draws' tables (kernel only; the NumPy twin draws with the plain recurrence): one block of
# POIS_W columns per draw, at VS_POIS + POIS_W * PO_*, laid out as
#   [0]                    L, the number of distinct CDF values (the CDF is constant from L - 1 on, or L = POIS_K)
#   [1 : 1 + POIS_M]       guide: the first k with cdf[k] >= i / POIS_M (L if none)
#   [1 + POIS_M : POIS_W]  cdf[k], k < L: the inverse-transform recurrence's partial sums, bit for bit
PO_SCAN, PO_ISSUE, PO_STATUS = 0, 1, 2
POIS_K = 255  # a Poisson draw stops at 255
POIS_M = 64  # guide entries (a power of two: int(u * POIS_M) is exact)
POIS_W = 1 + POIS_M + POIS_K
VS_POIS = 9
N_VS = VS_POIS + 3 * POIS_W

# --- per segment table, prepared by model.segment_table ------------------------------------------
SG_BASE = 0  # base activity logit
SG_BETA_XP = 1  # weight of perceived XP value
SG_BETA_REF = 2  # weight of the reference-point gain/loss
SG_LOSS_AVERSION = 3  # losses weigh this many times more than gains
SG_BETA_STREAK = 4  # effort to keep a live streak, per log(1 + streak)
SG_BETA_SAT = 5  # weight of satisfaction
SG_RHO_REF = 6  # daily adaptation rate of the reference point
SG_CHURN_BASE = 7
SG_CHURN_IDLE = 8
SG_CHURN_STREAK = 9
SG_CHURN_SAT = 10
SG_SAT_BASE = 11
SG_SAT_REF = 12
SG_SAT_RANK = 13
SG_SAT_XP = 14
SG_BETA_SB = 15  # weight of the anticipated streak bonus (saturating)
SG_USEFUL_SCANS = 16  # scans of a day that carry value; the rest are duplicates
SG_USEFUL_FB = 17  # feedbacks of a day that carry value
N_SG = 18

# --- per (segment, days since enrolment) table, prepared by model.tenure_table ------------------
TN_NOVELTY = 0  # novelty boost of the activity logit
TN_HABITUATION = 1  # share of the response to XP left after this tenure
TN_ONBOARDING = 2  # weight of the first-scan bonus for new users
N_TN = 3

# --- global constants of the day, prepared by model.global_vector ---------------------------------
GL_XP_UNIT = 0  # XP scale of the perceived-value curve
GL_INFLATION = 1  # cumulative XP at which the same reward feels half as large
GL_RANK = 2  # strength of site-rank motivation (0 = off)
GL_ALPHA = 3  # EMA rate of the per-user metrics, 2 / (window + 1)
GL_RHO_SAT = 4  # daily adaptation rate of satisfaction
GL_MISSION_PERIOD = 5  # days per mission
GL_MISSION_STRETCH = 6  # mission target = stretch * recent scans/day * period
GL_MISSION_MIN_RATE = 7  # floor of the recent scan rate used for targets
GL_MISSION_XP = 8  # XP for a completed mission (scenario constant, not an agent parameter)
GL_WEEKDAY = 9  # today's weekday effect on the activity logit
GL_GAIN_CLIP = 10  # bound of the relative gain/loss against the reference point
N_GL = 11

# --- integer aggregates per (chunk, variant) --------------------------------------------------------
A_ENROLLED = 0
A_CHURNED = 1  # churned so far (stay in the denominators)
A_ACTIVE = 2
A_ACTIVE7 = 3
A_SCANS = 4
A_FEEDBACK = 5  # scans with written feedback (a photo always comes with a feedback)
A_PHOTOS = 6
A_ISSUES = 7
A_STATUS = 8
A_M_DONE = 9  # missions resolved today as completed (at the end of their period, or at churn)
A_M_FAILED = 10  # missions resolved today as failed
A_CHURNED_TODAY = 11
A_XP_SCAN = 12  # XP ledger, one column per rule (A_XP_SCAN .. A_XP_MISSION)
A_XP_FIRST = 13
A_XP_STREAK = 14
A_XP_FEEDBACK = 15
A_XP_PHOTO = 16
A_XP_ISSUE = 17
A_XP_STATUS = 18
A_XP_MISSION = 19
A_XP_BUDGET = 20  # XP withheld by the pro-rata payout of the budget (<= 0); part of the ledger
A_STREAK_SUM = 21
A_STREAK_SQ = 22
A_NEW = 23
A_M_REACHED = 24  # missions whose target was reached today (each pays GL_MISSION_XP)
A_USEFUL_SCANS = 25  # sum over users of min(scans, useful_scans): scans that carry value
A_USEFUL_FB = 26  # sum over users of min(feedback, useful_feedback)
N_AI = 27
XP_RULES = ("scan", "firstScan", "streak", "feedback", "photo", "issueReport", "statusReport", "mission",
            "budget")

# --- float aggregates per (chunk, variant) ----------------------------------------------------------
F_SCAN_SUM = 0
F_SCAN_SQ = 1
F_XP_SUM = 2
F_XP_SQ = 3
F_SAT_SUM = 4
F_CHURN_RISK = 5  # sum of today's churn hazards of the users at risk (the expected number lost today)
N_AF = 6

# --- site sums (n, sum of xp_ema, sum of squares), for the control's users (0..2) and for the
# treatments' users (3..5): the control has its own leaderboard, so treatments cannot move it ------
SITE_N, SITE_SUM, SITE_SQ = 0, 1, 2
SITE_GROUP = 3  # offset of the treatments' sums
N_SITE = 6


# --- what the phases of the population step read and pass on ---------------------------------------
DayParams = namedtuple("DayParams", [
    "day",  # today (int)
    "seed",  # the episode seed (int)
    "dkey",  # rng.day_key(seed, day): the (seed, day) half of every draw's hash (uint64)
    "cfg",  # (V, 10) float64, today's prices, columns P_*
    "prices",  # (V, 10) int64, the same as integers (the XP awards and caps; no conversion per user)
    "pscale",  # (V,) the payout ratio users expect (1 without a budget)
    "sb_first",  # (V,) the perceived streak bonus of a streak's first day: min(P_STREAK_DAY, P_STREAK_CAP) * pscale
    "vs_tab",  # (V, G, N_VS) incentive table
    "sg_tab",  # (G, N_SG) segment table
    "tenure",  # (G, T, N_TN) tenure table (novelty, habituation, onboarding by days since enrolment)
    "log1p_tab",  # (L,) log(1 + k), k = 0..L-1
    "inv_xp_unit",  # 1 / GL_XP_UNIT
    "inv_inflation",  # 1 / GL_INFLATION
    "rank_k",  # GL_RANK
    "alpha_w",  # GL_ALPHA
    "rho_sat",  # GL_RHO_SAT
    "period",  # GL_MISSION_PERIOD as uint64
    "period_magic",  # floor(2**32 / period) + 1: age // period = (age * period_magic) >> 32 for age < 2**16
    "stretch",  # GL_MISSION_STRETCH
    "min_rate",  # GL_MISSION_MIN_RATE
    "mission_xp",  # GL_MISSION_XP as an integer
    "weekday",  # GL_WEEKDAY
    "gain_clip",  # GL_GAIN_CLIP
])
"""Everything the phases of the population step read besides the user record: the tables of the day
and the constants derived from ``glob`` (built by ``day_params``, the same in both backends)."""

Appraisal = namedtuple("Appraisal", [
    "alive",  # the live streak: streak if the user was active yesterday, else 0
    "anticipated",  # the XP an active day would pay, before the streak premium (float64)
    "perceived",  # log(1 + anticipated * deflate): its perceived value
    "streak_value",  # saturating value of the streak premium (what a break would lose)
    "first_value",  # saturating value of the first-scan bonus
    "ref",  # the reference point (ref_xp, or anticipated on the user's first day)
    "gain",  # loss-weighted, clipped relative gain of the offer against the reference point
    "pct",  # rank score among the site peers of the user's group, in (0, 1); 0.5 without spread
])
"""A user's view of today's offer, written by ``appraise`` and read by the later phases."""
