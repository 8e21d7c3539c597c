//! The fixed vocabulary of generated data: names, places, product categories and their prices,
//! campaign and ticket subjects, and the weights of when people shop.

pub const FIRST_NAMES: &[&str] = &[
    "Emma", "Liam", "Olivia", "Noah", "Ava", "Ethan", "Sophia", "Mason", "Isabella", "Lucas",
    "Mia", "Oliver", "Amelia", "Elijah", "Harper", "James", "Evelyn", "Benjamin", "Abigail",
    "Henry", "Chloé", "José", "Zoë", "Søren", "Łucja", "Mateo", "Aisha", "Hiroshi", "Priya",
    "Chen", "Fatima", "Ingrid", "Kwame", "Léa", "Nikolai", "Sofía", "Yusuf", "Ana", "Luca", "Mei",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Pérez",
    "Müller",
    "Nowak",
    "Kowalski",
    "Rossi",
    "Dubois",
    "Jensen",
    "Tanaka",
    "Sato",
    "Kim",
    "Nguyen",
    "Okafor",
    "Patel",
    "Singh",
    "O'Brien",
    "Schmidt",
    "Bianchi",
    "Silva",
    "Andersson",
];

pub const EMAIL_DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "inbox.example.net",
    "shopper.example",
    "example.co.uk",
];

/// City, postal code prefix, country, currency.
pub const PLACES: &[(&str, &str, &str, &str)] = &[
    ("New York", "100", "US", "USD"),
    ("Chicago", "606", "US", "USD"),
    ("Austin", "787", "US", "USD"),
    ("Seattle", "981", "US", "USD"),
    ("Denver", "802", "US", "USD"),
    ("Toronto", "M5V", "CA", "CAD"),
    ("London", "EC1", "GB", "GBP"),
    ("Manchester", "M1 ", "GB", "GBP"),
    ("Berlin", "101", "DE", "EUR"),
    ("Paris", "750", "FR", "EUR"),
    ("Madrid", "280", "ES", "EUR"),
    ("Warsaw", "00-", "PL", "EUR"),
    ("Łódź", "90-", "PL", "EUR"),
];

pub const STREETS: &[&str] = &[
    "Main St",
    "Oak Avenue",
    "Maple Road",
    "High Street",
    "Park Lane",
    "Cedar Court",
    "Elm Street",
    "Lakeview Drive",
    "Station Road",
    "Hauptstraße",
    "Rue de Rivoli",
    "ul. Piotrkowska",
];

/// Category name, cheapest and dearest unit price in cents, typical product names.
pub const CATEGORIES: &[(&str, i64, i64, &[&str])] = &[
    (
        "Electronics",
        1_999,
        129_999,
        &[
            "Wireless Earbuds",
            "USB-C Charger",
            "Smart Watch",
            "Bluetooth Speaker",
            "4K Monitor",
        ],
    ),
    (
        "Fashion",
        1_499,
        24_999,
        &[
            "Denim Jacket",
            "Linen Shirt",
            "Sneakers",
            "Wool Scarf",
            "Leather Belt",
        ],
    ),
    (
        "Home & Kitchen",
        999,
        49_999,
        &[
            "Chef's Knife",
            "Cast Iron Pan",
            "Coffee Grinder",
            "Bath Towels",
            "Table Lamp",
        ],
    ),
    (
        "Beauty",
        599,
        8_999,
        &["Face Serum", "Lip Balm", "Shampoo", "Perfume", "Sunscreen"],
    ),
    (
        "Sports & Outdoors",
        1_299,
        59_999,
        &[
            "Yoga Mat",
            "Running Shoes",
            "Tent",
            "Water Bottle",
            "Cycling Helmet",
        ],
    ),
    (
        "Books",
        499,
        4_999,
        &[
            "Cookbook",
            "Mystery Novel",
            "Travel Guide",
            "Children's Book",
            "Biography",
        ],
    ),
    (
        "Toys & Games",
        799,
        14_999,
        &[
            "Board Game",
            "Building Blocks",
            "Puzzle",
            "Plush Bear",
            "RC Car",
        ],
    ),
    (
        "Grocery",
        199,
        4_999,
        &[
            "Olive Oil",
            "Coffee Beans",
            "Green Tea",
            "Dark Chocolate",
            "Granola",
        ],
    ),
    (
        "Garden",
        999,
        39_999,
        &[
            "Garden Hose",
            "Seed Kit",
            "Pruning Shears",
            "Planter",
            "Bird Feeder",
        ],
    ),
    (
        "Health",
        499,
        9_999,
        &[
            "Vitamins",
            "Protein Powder",
            "First Aid Kit",
            "Massage Ball",
            "Thermometer",
        ],
    ),
    (
        "Jewelry",
        2_999,
        199_999,
        &[
            "Silver Ring",
            "Gold Necklace",
            "Pearl Earrings",
            "Bracelet",
            "Watch",
        ],
    ),
    (
        "Pet Supplies",
        499,
        19_999,
        &[
            "Dog Food",
            "Cat Tree",
            "Leash",
            "Pet Bed",
            "Aquarium Filter",
        ],
    ),
];

/// Relative likelihood of an order in each hour of the day (UTC as local): lunch and evening peaks.
pub const HOUR_WEIGHTS: [u32; 24] = [
    3, 2, 1, 1, 1, 1, 2, 4, 6, 7, 8, 9, 12, 11, 9, 8, 8, 9, 11, 14, 16, 15, 11, 6,
];

/// Relative likelihood of an order on each weekday, Monday first: Sunday evenings and Mondays lead.
pub const WEEKDAY_WEIGHTS: [u32; 7] = [17, 14, 13, 13, 14, 12, 17];

/// Channel and weight.
pub const ORDER_CHANNELS: &[(&str, u32)] = &[
    ("web", 55),
    ("mobile_app", 33),
    ("marketplace", 7),
    ("in_store", 5),
];

/// Session source and weight.
pub const SESSION_SOURCES: &[(&str, u32)] = &[
    ("direct", 30),
    ("organic_search", 25),
    ("paid_search", 12),
    ("email", 13),
    ("social", 14),
    ("referral", 6),
];

pub const CAMPAIGN_THEMES: &[&str] = &[
    "Spring Sale",
    "Summer Essentials",
    "Back to School",
    "Black Friday",
    "Cyber Monday",
    "Holiday Gift Guide",
    "New Year Clearance",
    "Valentine's Picks",
    "Loyalty Double Points",
    "Weekend Flash Sale",
];

pub const TICKET_SUBJECTS: &[&str] = &[
    "Where is my order?",
    "Item arrived damaged",
    "Wrong size delivered",
    "Refund not received",
    "Cannot log in",
    "Change delivery address",
    "Promo code not working",
    "Question about warranty",
    "Missing item in package",
    "Cancel my order",
];

pub const NOTE_BODIES: &[&str] = &[
    "Prefers phone contact in the afternoon.",
    "Asked about bulk pricing for the office; follow up next quarter.",
    "Had a rough delivery experience in the spring; be generous with goodwill credits.",
    "Long-time customer, very responsive to email campaigns.",
    "Requested that we stop sending SMS; email is fine.",
    "Escalated a refund last year; resolved to their satisfaction.",
];

/// Tag name and colour.
pub const TAGS: &[(&str, &str)] = &[
    ("VIP", "#eab308"),
    ("Influencer", "#a855f7"),
    ("Wholesale", "#0ea5e9"),
    ("Fraud watch", "#ef4444"),
    ("Press", "#22c55e"),
    ("Needs follow-up", "#f97316"),
];

/// Manual segments admins assign by hand.
pub const MANUAL_SEGMENTS: &[(&str, &str)] = &[
    ("Beta testers", "Customers who try new features first"),
    ("Corporate accounts", "Buying on behalf of a company"),
    ("Event attendees", "Met us at a trade show or pop-up"),
];

/// Admins who wrote the seeded notes and tag assignments: id, name.
pub const SEED_ADMINS: &[(&str, &str)] = &[
    ("ava", "Ava Admin"),
    ("sam", "Sam Support"),
    ("mia", "Mia Marketing"),
];
