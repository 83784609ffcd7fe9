int unused_random_cases;
